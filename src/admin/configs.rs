//! Configs: describe and incremental alter, for topics, brokers, broker loggers,
//! client-metrics subscriptions (KIP-714) and groups (KIP-848).
//!
//! Routing follows the Java client: a broker resource with a broker id, and every broker
//! logger resource, goes to that broker; the others (topics, the cluster-wide broker default
//! `""`, client metrics, groups) to any broker.
//!
//! ```no_run
//! # async fn demo(admin: &ferrokafka::admin::AdminClient) -> ferrokafka::Result<()> {
//! use ferrokafka::admin::{AlterConfigOp, ConfigResource};
//!
//! let topic = ConfigResource::topic("orders");
//! let changes = vec![AlterConfigOp::set("retention.ms", "3600000"), AlterConfigOp::append("cleanup.policy", "compact")];
//! for r in admin.incremental_alter_configs([(topic.clone(), changes)], Default::default()).await? {
//!     r.result?;
//! }
//! let described = admin.describe_configs([topic], Default::default()).await?;
//! println!("{:?}", described[0].entry("retention.ms").and_then(|e| e.value.as_deref()));
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::route::Target;
use super::AdminClient;
use crate::error::{Error, ErrorCode, Result};

/// The type of a config resource (Java's `ConfigResource.Type`; the wire codes of
/// `DescribeConfigsRequest.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResourceType {
    /// A topic (code 2).
    Topic,
    /// A broker, by id; the name `""` is the cluster-wide default of every broker (code 4).
    Broker,
    /// The log4j loggers of one broker, by id (code 8).
    BrokerLogger,
    /// A client-metrics subscription (KIP-714, code 16).
    ClientMetrics,
    /// A group's configs (KIP-848, code 32).
    Group,
    /// A code this client does not name (Java's `UNKNOWN`), as a broker reported it.
    Unknown(i8),
}

impl ConfigResourceType {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
            ConfigResourceType::ClientMetrics => 16,
            ConfigResourceType::Group => 32,
            ConfigResourceType::Unknown(c) => c,
        }
    }

    /// The type of a wire code.
    pub fn from_code(code: i8) -> ConfigResourceType {
        match code {
            2 => ConfigResourceType::Topic,
            4 => ConfigResourceType::Broker,
            8 => ConfigResourceType::BrokerLogger,
            16 => ConfigResourceType::ClientMetrics,
            32 => ConfigResourceType::Group,
            c => ConfigResourceType::Unknown(c),
        }
    }
}

impl fmt::Display for ConfigResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigResourceType::Topic => f.write_str("topic"),
            ConfigResourceType::Broker => f.write_str("broker"),
            ConfigResourceType::BrokerLogger => f.write_str("broker logger"),
            ConfigResourceType::ClientMetrics => f.write_str("client metrics"),
            ConfigResourceType::Group => f.write_str("group"),
            ConfigResourceType::Unknown(c) => write!(f, "resource type {c}"),
        }
    }
}

/// A resource that has configs: a type and a name (Java's `ConfigResource`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// The resource's type.
    pub resource_type: ConfigResourceType,
    /// The resource's name: a topic name, a broker id in decimal (`""` for the broker
    /// default), a client-metrics subscription name, a group id.
    pub name: String,
}

impl ConfigResource {
    /// A resource of any type.
    pub fn new(resource_type: ConfigResourceType, name: impl Into<String>) -> ConfigResource {
        ConfigResource { resource_type, name: name.into() }
    }

    /// A topic.
    pub fn topic(name: impl Into<String>) -> ConfigResource {
        ConfigResource::new(ConfigResourceType::Topic, name)
    }

    /// One broker's configs.
    pub fn broker(id: i32) -> ConfigResource {
        ConfigResource::new(ConfigResourceType::Broker, id.to_string())
    }

    /// The cluster-wide default configs of every broker (broker resource `""`).
    pub fn broker_default() -> ConfigResource {
        ConfigResource::new(ConfigResourceType::Broker, "")
    }

    /// The loggers of one broker.
    pub fn broker_logger(id: i32) -> ConfigResource {
        ConfigResource::new(ConfigResourceType::BrokerLogger, id.to_string())
    }

    /// A client-metrics subscription (KIP-714).
    pub fn client_metrics(name: impl Into<String>) -> ConfigResource {
        ConfigResource::new(ConfigResourceType::ClientMetrics, name)
    }

    /// A group's configs.
    pub fn group(id: impl Into<String>) -> ConfigResource {
        ConfigResource::new(ConfigResourceType::Group, id)
    }

    /// Where the Java client sends requests about this resource: the broker it names for a
    /// broker (other than the default) or a broker logger, any broker otherwise. A broker
    /// or broker-logger name that is not a broker id is refused, as the Java client's
    /// `Integer.valueOf` refuses it.
    fn target(&self) -> Result<Target> {
        let by_id = match self.resource_type {
            ConfigResourceType::Broker => !self.name.is_empty(),
            ConfigResourceType::BrokerLogger => true,
            _ => false,
        };
        if !by_id {
            return Ok(Target::Any);
        }
        self.name.parse::<i32>().map(Target::Broker).map_err(|_| {
            Error::InvalidArgument(format!("{self}: the name of a {} resource must be a broker id", self.resource_type))
        })
    }

    /// This resource's error, naming it: a topic in the error's topic field, any other
    /// resource at the start of the message.
    fn error(&self, code: ErrorCode, api: &'static str, message: Option<String>) -> Error {
        if self.resource_type == ConfigResourceType::Topic {
            Error::broker(code, api, message, Some(self.name.clone()), None)
        } else {
            let mut m = match message {
                Some(m) if !m.is_empty() => format!("{self}: {m}"),
                _ => format!("{self}: {}", code.description()),
            };
            if self.resource_type == ConfigResourceType::Group && code == ErrorCode::InvalidRequest {
                m.push_str(" (brokers before Kafka 4.0 have no group config resources)");
            }
            Error::broker(code, api, Some(m), None, None)
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.resource_type == ConfigResourceType::Broker && self.name.is_empty() {
            f.write_str("broker default")
        } else {
            write!(f, "{} {}", self.resource_type, self.name)
        }
    }
}

/// Where a config's value comes from (Java's `ConfigEntry.ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// A topic's dynamic config (wire 1).
    DynamicTopicConfig,
    /// A dynamic config of this broker (wire 2).
    DynamicBrokerConfig,
    /// The dynamic cluster-wide default of every broker (wire 3).
    DynamicDefaultBrokerConfig,
    /// The broker's `server.properties` (wire 4).
    StaticBrokerConfig,
    /// The built-in default (wire 5).
    DefaultConfig,
    /// A broker logger's level set at run time (wire 6).
    DynamicBrokerLoggerConfig,
    /// A client-metrics subscription's config (wire 7).
    DynamicClientMetricsConfig,
    /// A group's dynamic config (wire 8).
    DynamicGroupConfig,
    /// A source this client does not know (wire 0 or a newer code).
    Unknown(i8),
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            7 => ConfigSource::DynamicClientMetricsConfig,
            8 => ConfigSource::DynamicGroupConfig,
            c => ConfigSource::Unknown(c),
        }
    }
}

/// The type of a config's value (Java's `ConfigEntry.ConfigType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigType {
    /// `true` or `false`.
    Boolean,
    /// A string.
    String,
    /// A 32-bit integer.
    Int,
    /// A 16-bit integer.
    Short,
    /// A 64-bit integer.
    Long,
    /// A floating-point number.
    Double,
    /// A comma-separated list.
    List,
    /// A Java class name.
    Class,
    /// A password (sensitive).
    Password,
    /// Not reported (DescribeConfigs before v3) or a code this client does not know.
    Unknown(i8),
}

impl ConfigType {
    fn from_code(code: i8) -> ConfigType {
        match code {
            1 => ConfigType::Boolean,
            2 => ConfigType::String,
            3 => ConfigType::Int,
            4 => ConfigType::Short,
            5 => ConfigType::Long,
            6 => ConfigType::Double,
            7 => ConfigType::List,
            8 => ConfigType::Class,
            9 => ConfigType::Password,
            c => ConfigType::Unknown(c),
        }
    }
}

/// One synonym of a config: a config of another level (topic, broker, default) that
/// would give the value if the ones before it were not set, highest precedence first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The synonym's name (`log.retention.ms` for a topic's `retention.ms`, say).
    pub name: String,
    /// Its value; `None` when sensitive or unset.
    pub value: Option<String>,
    /// Where it is set.
    pub source: ConfigSource,
}

/// One config of a resource (Java's `ConfigEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The config's name.
    pub name: String,
    /// Its value; `None` when the config is sensitive (a password) or has no value.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the value is sensitive (never sent by the broker).
    pub is_sensitive: bool,
    /// Whether the config cannot be changed at run time.
    pub read_only: bool,
    /// The synonyms, when [`DescribeConfigsOptions::include_synonyms`] is set (empty
    /// otherwise), highest precedence first.
    pub synonyms: Vec<ConfigSynonym>,
    /// The value's type (DescribeConfigs v3+; [`ConfigType::Unknown`] before).
    pub config_type: ConfigType,
    /// The config's documentation, when [`DescribeConfigsOptions::include_documentation`]
    /// is set and the broker has some.
    pub documentation: Option<String>,
}

/// Options of [`AdminClient::describe_configs`].
#[derive(Debug, Clone, Default)]
pub struct DescribeConfigsOptions {
    /// Report each config's synonyms ([`ConfigEntry::synonyms`]). Default `false`.
    pub include_synonyms: bool,
    /// Report each config's documentation ([`ConfigEntry::documentation`]). Default `false`.
    pub include_documentation: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// The configs of one resource, from [`AdminClient::describe_configs`].
#[derive(Debug, Clone)]
pub struct ConfigsResult {
    /// The resource, as asked for.
    pub resource: ConfigResource,
    /// Its configs in the broker's order, or the error for this resource (for a topic that
    /// does not exist, `UNKNOWN_TOPIC_OR_PARTITION`).
    pub result: Result<Vec<ConfigEntry>>,
}

impl ConfigsResult {
    /// The entry named `name`, when the resource was described and has it.
    pub fn entry(&self, name: &str) -> Option<&ConfigEntry> {
        self.result.as_ref().ok()?.iter().find(|e| e.name == name)
    }
}

/// How [`AlterConfigOp`] changes a config (Java's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlterConfigOpType {
    /// Sets the value (wire 0).
    Set,
    /// Removes the config, so that it falls back to its default (wire 1).
    Delete,
    /// Adds the value to a list config, unless already there (wire 2).
    Append,
    /// Removes the value from a list config (wire 3).
    Subtract,
}

impl AlterConfigOpType {
    fn code(self) -> i8 {
        match self {
            AlterConfigOpType::Set => 0,
            AlterConfigOpType::Delete => 1,
            AlterConfigOpType::Append => 2,
            AlterConfigOpType::Subtract => 3,
        }
    }
}

/// One change of [`AdminClient::incremental_alter_configs`] (Java's `AlterConfigOp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    /// The config's name.
    pub name: String,
    /// What to do.
    pub op: AlterConfigOpType,
    /// The value to set, append or subtract (`None` for a delete).
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp { name: name.into(), op: AlterConfigOpType::Set, value: Some(value.into()) }
    }

    /// Removes `name`, back to its default.
    pub fn delete(name: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp { name: name.into(), op: AlterConfigOpType::Delete, value: None }
    }

    /// Adds `value` to the list config `name`.
    pub fn append(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp { name: name.into(), op: AlterConfigOpType::Append, value: Some(value.into()) }
    }

    /// Removes `value` from the list config `name`.
    pub fn subtract(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp { name: name.into(), op: AlterConfigOpType::Subtract, value: Some(value.into()) }
    }
}

/// Options of [`AdminClient::incremental_alter_configs`].
#[derive(Debug, Clone, Default)]
pub struct AlterConfigsOptions {
    /// Only validate the changes on the broker; change nothing. Default `false`.
    pub validate_only: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// The outcome for one resource of [`AdminClient::incremental_alter_configs`].
#[derive(Debug, Clone)]
pub struct AlterConfigsResult {
    /// The resource, as asked for.
    pub resource: ConfigResource,
    /// `Ok` when the broker applied (or, with `validate_only`, accepted) every change of
    /// this resource, else its error naming the resource (`INVALID_CONFIG` for an unknown
    /// config name, `UNKNOWN_TOPIC_OR_PARTITION`, ...).
    pub result: Result<()>,
}

impl AdminClient {
    /// Describes the configs of each resource: per resource its entries (name, value, source,
    /// sensitivity, read-only, synonyms, type, documentation) or its own error. Broker and
    /// broker-logger resources are asked of the broker they name, the others of any broker;
    /// one request per broker, all at once. A broker or broker-logger name that is not a
    /// broker id is refused before anything is sent.
    pub async fn describe_configs(
        &self,
        resources: impl IntoIterator<Item = ConfigResource>,
        options: DescribeConfigsOptions,
    ) -> Result<Vec<ConfigsResult>> {
        let resources: Vec<ConfigResource> = resources.into_iter().collect();
        let timeout = self.call_timeout(options.timeout);
        let results = self
            .per_resource("DescribeConfigs", &resources, |target, group| {
                let options = &options;
                async move {
                    let resp = self
                        .send_to::<DescribeConfigsRequest, _, _>(
                            "DescribeConfigs",
                            target,
                            timeout,
                            |_| {
                                Ok(DescribeConfigsRequest::default()
                                    .with_include_synonyms(options.include_synonyms)
                                    .with_include_documentation(options.include_documentation)
                                    .with_resources(
                                        group
                                            .iter()
                                            .map(|r| {
                                                DescribeConfigsResource::default()
                                                    .with_resource_type(r.resource_type.code())
                                                    .with_resource_name(StrBytes::from_string(r.name.clone()))
                                                    .with_configuration_keys(None)
                                            })
                                            .collect(),
                                    ))
                            },
                            |_| Ok(()),
                        )
                        .await?;
                    Ok(resp
                        .results
                        .into_iter()
                        .map(|r| {
                            let entries = r.configs.into_iter().map(config_entry).collect();
                            (r.resource_type, r.resource_name, r.error_code, r.error_message, entries)
                        })
                        .collect())
                }
            })
            .await?;
        Ok(results.into_iter().map(|(resource, result)| ConfigsResult { resource, result }).collect())
    }

    /// Changes configs incrementally: per resource a list of set, delete, append and
    /// subtract operations, applied together or not at all; per resource its own result.
    /// With [`AlterConfigsOptions::validate_only`] the broker checks the changes and applies
    /// none. Routing as [`AdminClient::describe_configs`]. Refused before sending: a
    /// resource given twice, an empty config name, a broker or broker-logger name that is
    /// not a broker id.
    pub async fn incremental_alter_configs(
        &self,
        changes: impl IntoIterator<Item = (ConfigResource, Vec<AlterConfigOp>)>,
        options: AlterConfigsOptions,
    ) -> Result<Vec<AlterConfigsResult>> {
        let changes: Vec<(ConfigResource, Vec<AlterConfigOp>)> = changes.into_iter().collect();
        let mut seen = std::collections::HashSet::new();
        for (r, ops) in &changes {
            if !seen.insert(r) {
                return Err(Error::InvalidArgument(format!("{r} is given twice")));
            }
            if ops.iter().any(|op| op.name.is_empty()) {
                return Err(Error::InvalidArgument(format!("{r}: a config name is empty")));
            }
        }
        let resources: Vec<ConfigResource> = changes.iter().map(|(r, _)| r.clone()).collect();
        let ops: HashMap<&ConfigResource, &Vec<AlterConfigOp>> = changes.iter().map(|(r, o)| (r, o)).collect();
        let timeout = self.call_timeout(options.timeout);
        let results = self
            .per_resource("IncrementalAlterConfigs", &resources, |target, group| {
                let ops = &ops;
                let validate_only = options.validate_only;
                async move {
                    let resp = self
                        .send_to::<IncrementalAlterConfigsRequest, _, _>(
                            "IncrementalAlterConfigs",
                            target,
                            timeout,
                            |_| {
                                Ok(IncrementalAlterConfigsRequest::default()
                                    .with_validate_only(validate_only)
                                    .with_resources(group.iter().map(|r| alter_resource(r, ops[r])).collect()))
                            },
                            |_| Ok(()),
                        )
                        .await?;
                    Ok(resp
                        .responses
                        .into_iter()
                        .map(|r| (r.resource_type, r.resource_name, r.error_code, r.error_message, ()))
                        .collect())
                }
            })
            .await?;
        Ok(results.into_iter().map(|(resource, result)| AlterConfigsResult { resource, result }).collect())
    }

    /// Runs `call(target, resources)` for the resources of each target (see
    /// [`ConfigResource::target`]), all targets at once, and returns one result per
    /// resource in the caller's order: the answer's value, the resource's error (naming
    /// it), the call's error for every resource of a failed call, or a protocol error for
    /// a resource the answer left out.
    async fn per_resource<T, F, Fut>(
        &self,
        api: &'static str,
        resources: &[ConfigResource],
        call: F,
    ) -> Result<Vec<(ConfigResource, Result<T>)>>
    where
        T: Clone,
        F: Fn(Target, Vec<ConfigResource>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Answer<T>>>>,
    {
        // Group resources go in a request of their own: a broker before Kafka 4.0 refuses a
        // whole request that names one (INVALID_REQUEST for every resource in it).
        let mut groups: BTreeMap<(TargetKey, bool), Vec<ConfigResource>> = BTreeMap::new();
        for r in resources {
            let key = (TargetKey(r.target()?), r.resource_type == ConfigResourceType::Group);
            groups.entry(key).or_default().push(r.clone());
        }
        let groups: Vec<(Target, Vec<ConfigResource>)> = groups.into_iter().map(|((k, _), v)| (k.0, v)).collect();
        let calls = groups.iter().map(|(target, group)| {
            let call = &call;
            async move { (group, call(*target, group.clone()).await) }
        });
        let mut answers: HashMap<ConfigResource, Result<T>> = HashMap::new();
        for (group, outcome) in futures::future::join_all(calls).await {
            match outcome {
                Err(e) => answers.extend(group.iter().map(|r| (r.clone(), Err(e.clone())))),
                Ok(list) => {
                    for (resource_type, name, code, message, value) in list {
                        let resource = ConfigResource::new(ConfigResourceType::from_code(resource_type), name.to_string());
                        let result = match ErrorCode::from_code(code) {
                            Some(code) => Err(resource.error(code, api, message.map(|m| m.to_string()))),
                            None => Ok(value),
                        };
                        answers.insert(resource, result);
                    }
                }
            }
        }
        Ok(resources
            .iter()
            .map(|r| {
                let result = answers.get(r).cloned().unwrap_or_else(|| Err(missing(r, api)));
                (r.clone(), result)
            })
            .collect())
    }
}

/// One resource's part of an answer: its type and name, error code and message, and
/// value.
type Answer<T> = (i8, StrBytes, i16, Option<StrBytes>, T);

fn alter_resource(r: &ConfigResource, ops: &[AlterConfigOp]) -> AlterConfigsResource {
    AlterConfigsResource::default()
        .with_resource_type(r.resource_type.code())
        .with_resource_name(StrBytes::from_string(r.name.clone()))
        .with_configs(
            ops.iter()
                .map(|op| {
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(op.name.clone()))
                        .with_config_operation(op.op.code())
                        .with_value(op.value.clone().map(StrBytes::from_string))
                })
                .collect(),
        )
}

/// A [`Target`] as a map key (any broker first, then brokers by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TargetKey(Target);

impl TargetKey {
    fn rank(&self) -> (u8, i32) {
        match self.0 {
            Target::Any => (0, 0),
            Target::Controller => (1, 0),
            Target::Broker(id) => (2, id),
        }
    }
}

impl PartialOrd for TargetKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TargetKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// The error of a resource the broker's answer left out.
fn missing(r: &ConfigResource, api: &'static str) -> Error {
    Error::Protocol { broker: "broker".into(), detail: format!("{api} response has no result for {r}") }
}

fn config_entry(c: kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult) -> ConfigEntry {
    ConfigEntry {
        name: c.name.to_string(),
        value: if c.is_sensitive { None } else { c.value.map(|v| v.to_string()) },
        source: ConfigSource::from_code(c.config_source),
        is_sensitive: c.is_sensitive,
        read_only: c.read_only,
        synonyms: c
            .synonyms
            .into_iter()
            .map(|s| ConfigSynonym {
                name: s.name.to_string(),
                value: s.value.map(|v| v.to_string()),
                source: ConfigSource::from_code(s.source),
            })
            .collect(),
        config_type: ConfigType::from_code(c.config_type),
        documentation: c.documentation.map(|d| d.to_string()).filter(|d| !d.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_route_as_the_java_client() {
        assert_eq!(ConfigResource::topic("t").target().unwrap(), Target::Any);
        assert_eq!(ConfigResource::broker(3).target().unwrap(), Target::Broker(3));
        assert_eq!(ConfigResource::broker_default().target().unwrap(), Target::Any);
        assert_eq!(ConfigResource::broker_logger(2).target().unwrap(), Target::Broker(2));
        assert_eq!(ConfigResource::client_metrics("m").target().unwrap(), Target::Any);
        assert_eq!(ConfigResource::group("g").target().unwrap(), Target::Any);
        for bad in [
            ConfigResource::new(ConfigResourceType::Broker, "one"),
            ConfigResource::new(ConfigResourceType::BrokerLogger, ""),
        ] {
            let e = bad.target().unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("broker id"), "{e}");
        }
    }

    #[test]
    fn type_codes_round_trip() {
        for t in [
            ConfigResourceType::Topic,
            ConfigResourceType::Broker,
            ConfigResourceType::BrokerLogger,
            ConfigResourceType::ClientMetrics,
            ConfigResourceType::Group,
            ConfigResourceType::Unknown(99),
        ] {
            assert_eq!(ConfigResourceType::from_code(t.code()), t);
        }
        assert_eq!(ConfigSource::from_code(1), ConfigSource::DynamicTopicConfig);
        assert_eq!(ConfigType::from_code(7), ConfigType::List);
    }

    #[test]
    fn resource_errors_name_the_resource() {
        let e = ConfigResource::topic("orders").error(ErrorCode::InvalidConfig, "IncrementalAlterConfigs", Some("bad".into()));
        assert!(e.to_string().contains("for topic orders: bad"), "{e}");
        let e = ConfigResource::broker(1).error(ErrorCode::InvalidConfig, "IncrementalAlterConfigs", None);
        assert!(e.to_string().contains("broker 1: "), "{e}");
    }
}
