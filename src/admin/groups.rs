//! Consumer groups: list, describe, delete, offsets, remove members.
//!
//! Every call about groups goes to each group's coordinator: the coordinators of all the
//! groups of a call are looked up at once (FindCoordinator batched, KIP-699), the groups
//! of one coordinator go in one request where the API allows it, and a group whose
//! coordinator moved or is still loading is sent again (inside the one retry loop) while
//! the others keep their results. Results are per group, in the order asked (duplicates
//! dropped): a call about ten groups where one is missing returns nine descriptions and
//! one error naming the group.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;

use std::time::{Duration, Instant};

use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest, GroupId, LeaveGroupRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::route::{needs_version, require_version, GROUP_KEY};
use super::{AclOperation, AdminClient};
use crate::consumer::group::consumer_protocol;
use crate::consumer::{OffsetAndMetadata, TopicPartition};
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::BrokerInfo;
use crate::network::BrokerConnection;

/// The type of a group (KIP-848 and later): which protocol its members speak.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupType {
    /// The classic protocol (JoinGroup / SyncGroup): consumers with client-side assignment,
    /// and also Connect workers and other users of the classic protocol.
    Classic,
    /// The consumer protocol of KIP-848 (ConsumerGroupHeartbeat, server-side assignment).
    Consumer,
    /// A share group (KIP-932).
    Share,
    /// A Streams group (KIP-1071).
    Streams,
    /// A type this client does not know, as the broker named it.
    Other(String),
}

impl GroupType {
    /// Parses the broker's name of a group type (case-insensitive).
    pub fn parse(s: &str) -> GroupType {
        match s.to_ascii_lowercase().as_str() {
            "classic" => GroupType::Classic,
            "consumer" => GroupType::Consumer,
            "share" => GroupType::Share,
            "streams" => GroupType::Streams,
            _ => GroupType::Other(s.to_owned()),
        }
    }

    /// The name as the Java client sends it in ListGroups' types filter (`Classic`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            GroupType::Classic => "Classic",
            GroupType::Consumer => "Consumer",
            GroupType::Share => "Share",
            GroupType::Streams => "Streams",
            GroupType::Other(s) => s,
        }
    }
}

/// The state of a group, as the coordinator names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupState {
    /// A classic group waiting for its members to join again.
    PreparingRebalance,
    /// A classic group waiting for the leader's assignment.
    CompletingRebalance,
    /// Members and assignment are settled.
    Stable,
    /// The group has no members and no offsets (or is being removed).
    Dead,
    /// The group has no members (it may still have committed offsets).
    Empty,
    /// A consumer-protocol group computing a new target assignment.
    Assigning,
    /// A consumer-protocol group whose members move to the target assignment.
    Reconciling,
    /// A Streams group that is not ready yet.
    NotReady,
    /// A state this client does not know, as the broker named it.
    Other(String),
}

impl GroupState {
    /// Parses the broker's name of a state (case-insensitive).
    pub fn parse(s: &str) -> GroupState {
        match s.to_ascii_lowercase().as_str() {
            "preparingrebalance" => GroupState::PreparingRebalance,
            "completingrebalance" => GroupState::CompletingRebalance,
            "stable" => GroupState::Stable,
            "dead" => GroupState::Dead,
            "empty" => GroupState::Empty,
            "assigning" => GroupState::Assigning,
            "reconciling" => GroupState::Reconciling,
            "notready" => GroupState::NotReady,
            _ => GroupState::Other(s.to_owned()),
        }
    }

    /// The name the coordinator uses (`Stable`, `Empty`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
            GroupState::Empty => "Empty",
            GroupState::Assigning => "Assigning",
            GroupState::Reconciling => "Reconciling",
            GroupState::NotReady => "NotReady",
            GroupState::Other(s) => s,
        }
    }
}

impl std::fmt::Display for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome for one group of a call about several.
#[derive(Debug)]
pub struct GroupResult<T> {
    /// The group id, as asked for.
    pub group_id: String,
    /// The group's result, or the error for it (the broker's, naming the group in its
    /// message, or `InvalidArgument` for an empty id).
    pub result: Result<T>,
}

/// Options of [`AdminClient::list_groups`].
#[derive(Debug, Clone, Default)]
pub struct ListGroupsOptions {
    /// Only groups in one of these states (ListGroups v4+). Default: every state.
    pub states: Vec<GroupState>,
    /// Only groups of one of these types (ListGroups v5+). Default: every type.
    pub types: Vec<GroupType>,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// One group as [`AdminClient::list_groups`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type of the group (`consumer` for consumer groups of either protocol,
    /// `connect`, ..., or empty for a group that only has committed offsets).
    pub protocol_type: String,
    /// The group's state; `None` from brokers before ListGroups v4.
    pub state: Option<GroupState>,
    /// The group's type; `None` from brokers before ListGroups v5.
    pub group_type: Option<GroupType>,
}

/// What [`AdminClient::list_groups`] found: the groups of every broker that answered, and
/// the error of each broker that did not.
#[derive(Debug)]
pub struct ListGroupsResult {
    /// The groups, sorted by id.
    pub groups: Vec<GroupListing>,
    /// The brokers whose listing failed, by id, with their error. The Java client's `all()`
    /// fails when this is not empty; `valid()` is `groups`.
    pub errors: Vec<(i32, Error)>,
}

/// Options of [`AdminClient::describe_consumer_groups`] and
/// [`AdminClient::describe_classic_groups`].
#[derive(Debug, Clone, Default)]
pub struct DescribeGroupsOptions {
    /// Ask for the operations the caller may do on each group. Default `false`.
    pub include_authorized_operations: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// A member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub consumer_id: String,
    /// Its `group.instance.id` (static membership), if any.
    pub group_instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connected from, as the coordinator saw it (`/127.0.0.1`).
    pub host: String,
    /// The partitions assigned to it, sorted (for a classic group, decoded from the
    /// consumer protocol's assignment bytes).
    pub assignment: Vec<TopicPartition>,
    /// (Consumer protocol) the partitions the coordinator wants it to own, sorted; `None` for
    /// a classic group.
    pub target_assignment: Option<Vec<TopicPartition>>,
    /// (Consumer protocol) the member's epoch; `None` for a classic group.
    pub member_epoch: Option<i32>,
}

/// A consumer group as [`AdminClient::describe_consumer_groups`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// The group id.
    pub group_id: String,
    /// A classic group with an empty protocol type: one that only stores offsets (assign
    /// mode with commits).
    pub is_simple_consumer_group: bool,
    /// The members.
    pub members: Vec<MemberDescription>,
    /// The partition assignor (classic: the protocol the leader chose, such as `range`;
    /// consumer protocol: the server-side assignor, such as `uniform`).
    pub partition_assignor: String,
    /// Classic or Consumer.
    pub group_type: GroupType,
    /// The group's state.
    pub state: GroupState,
    /// The group's coordinator.
    pub coordinator: BrokerInfo,
    /// The operations the caller may do on the group (Java's `AclOperation` names:
    /// `READ`, `DESCRIBE`, `DELETE`, ...), when asked for with
    /// [`DescribeGroupsOptions::include_authorized_operations`].
    pub authorized_operations: Option<BTreeSet<AclOperation>>,
    /// (Consumer protocol) the group epoch; `None` for a classic group.
    pub group_epoch: Option<i32>,
    /// (Consumer protocol) the epoch of the target assignment; `None` for a classic group.
    pub target_assignment_epoch: Option<i32>,
}

/// A member of a classic group, as [`AdminClient::describe_classic_groups`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberDescription {
    /// The member id.
    pub member_id: String,
    /// Its `group.instance.id`, if any.
    pub group_instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connected from.
    pub host: String,
    /// Its protocol metadata as it sent it in JoinGroup (for consumers, the encoded
    /// subscription).
    pub metadata: bytes::Bytes,
    /// Its assignment bytes as the leader sent them.
    pub assignment_bytes: bytes::Bytes,
    /// For a group of protocol type `consumer`, the assignment decoded, sorted; `None` for
    /// other protocol types.
    pub assignment: Option<Vec<TopicPartition>>,
}

/// A classic group of any protocol type (`consumer`, `connect`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicGroupDescription {
    /// The group id.
    pub group_id: String,
    /// The protocol type (`consumer`, `connect`, or empty).
    pub protocol: String,
    /// The protocol the group chose (for consumers the assignor, such as `range`).
    pub protocol_data: String,
    /// The members.
    pub members: Vec<ClassicMemberDescription>,
    /// The group's state.
    pub state: GroupState,
    /// The group's coordinator.
    pub coordinator: BrokerInfo,
    /// The operations the caller may do on the group, when asked for.
    pub authorized_operations: Option<BTreeSet<AclOperation>>,
}

/// Options of the calls that take nothing but a timeout ([`AdminClient::delete_consumer_groups`],
/// [`AdminClient::alter_consumer_group_offsets`], [`AdminClient::delete_consumer_group_offsets`]).
#[derive(Debug, Clone, Default)]
pub struct GroupCallOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// Which offsets of one group [`AdminClient::list_consumer_group_offsets`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListConsumerGroupOffsetsSpec {
    /// The partitions to read; `None` (the default) reads every partition the group has an
    /// offset for.
    pub partitions: Option<Vec<TopicPartition>>,
}

/// Options of [`AdminClient::list_consumer_group_offsets`].
#[derive(Debug, Clone, Default)]
pub struct ListConsumerGroupOffsetsOptions {
    /// Wait for offsets of open transactions to be committed or aborted rather than return
    /// them (OffsetFetch v7+ `require_stable`; the broker answers UNSTABLE_OFFSET_COMMIT,
    /// retried until the call's timeout). Default `false`.
    pub require_stable: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// A group's committed offsets: for each partition, its offset, or `None` for a partition
/// asked for by name that has no committed offset.
pub type GroupOffsets = BTreeMap<TopicPartition, Option<OffsetAndMetadata>>;

/// A member to remove with [`AdminClient::remove_members_from_consumer_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberToRemove {
    /// The member's `group.instance.id` (a static member, as Java's `MemberToRemove`).
    pub group_instance_id: String,
}

/// Options of [`AdminClient::remove_members_from_consumer_group`].
#[derive(Debug, Clone, Default)]
pub struct RemoveMembersOptions {
    /// The members to remove; `None` (the default) removes every member the group has now
    /// (as Java's `RemoveMembersFromConsumerGroupOptions()` with no members).
    pub members: Option<Vec<MemberToRemove>>,
    /// The reason sent to the coordinator (LeaveGroup v5+): "member was removed by an
    /// admin: " and this; default just "member was removed by an admin".
    pub reason: Option<String>,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// The outcome for one removed member.
#[derive(Debug)]
pub struct RemovedMember {
    /// The member id (empty when it was named by instance id only).
    pub member_id: String,
    /// The member's `group.instance.id`, if any.
    pub group_instance_id: Option<String>,
    /// `Ok` when the coordinator removed it, else its error (UNKNOWN_MEMBER_ID, ...).
    pub result: Result<()>,
}

const DEFAULT_LEAVE_GROUP_REASON: &str = "member was removed by an admin";

pub(crate) fn group_id(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_owned()))
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}


/// Group ids in the order asked, duplicates dropped.
fn dedup(ids: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ids.into_iter().map(|s| s.as_ref().to_owned()).filter(|s| seen.insert(s.clone())).collect()
}

fn empty_group_id() -> Error {
    Error::InvalidArgument("a group id must not be empty".into())
}

/// The error of a group the per-coordinator loop has no result for (it always has one;
/// this is the fallback rather than a panic).
fn no_result(group: &str) -> Error {
    Error::broker(ErrorCode::UnknownServerError, "FindCoordinator", Some(format!("no result for group {group}")), None, None)
}

/// A group-level error code as an error naming the group.
fn group_error(code: i16, api: &'static str, message: Option<&str>, group: &str) -> Result<()> {
    match ErrorCode::from_code(code) {
        None => Ok(()),
        Some(c) => Err(Error::broker(
            c,
            api,
            Some(match message {
                Some(m) if !m.is_empty() => format!("group {group}: {m}"),
                _ => format!("group {group}"),
            }),
            None,
            None,
        )),
    }
}

fn sorted(mut v: Vec<TopicPartition>) -> Vec<TopicPartition> {
    v.sort();
    v.dedup();
    v
}

fn decode_classic_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>> {
    Ok(sorted(consumer_protocol::decode_assignment(bytes)?.partitions))
}

impl AdminClient {
    /// Runs [`AdminClient::per_coordinator`] for `ids` (duplicates dropped, an empty id
    /// refused with `InvalidArgument` for that group only) and returns the results in
    /// the order asked.
    async fn per_group<T, F, Fut>(
        &self,
        what: &'static str,
        ids: Vec<String>,
        timeout: Duration,
        call: F,
    ) -> Vec<GroupResult<T>>
    where
        F: Fn(BrokerConnection, i32, Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<(String, Result<T>)>>>,
    {
        let ids = dedup(ids);
        let valid: Vec<String> = ids.iter().filter(|g| !g.is_empty()).cloned().collect();
        let mut results = if valid.is_empty() { BTreeMap::new() } else { self.per_coordinator(GROUP_KEY, what, &valid, timeout, call).await };
        ids.into_iter()
            .map(|g| {
                let result = if g.is_empty() { Err(empty_group_id()) } else { results.remove(&g).unwrap_or_else(|| Err(no_result(&g))) };
                GroupResult { group_id: g, result }
            })
            .collect()
    }

    /// The broker of a coordinator id, for the descriptions.
    async fn broker_info(&self, node: i32) -> BrokerInfo {
        match self.core.cluster().await {
            Ok(c) => c.brokers.get(&node).cloned(),
            Err(_) => None,
        }
        .unwrap_or(BrokerInfo { id: node, host: String::new(), port: 0, rack: None })
    }

    /// Lists the groups of the cluster: ListGroups sent to every broker (each lists the
    /// groups it coordinates), merged. Filters by state (v4+) and type (v5+; KIP-848
    /// consumer groups are listed with type `Consumer`); a filter the broker's version
    /// cannot carry is `UnsupportedVersion`, as in the Java client. A broker that fails has
    /// its error in [`ListGroupsResult::errors`]; the call fails only when every broker did.
    pub async fn list_groups(&self, options: ListGroupsOptions) -> Result<ListGroupsResult> {
        let timeout = self.call_timeout(options.timeout);
        let states: Vec<StrBytes> = options.states.iter().map(|s| StrBytes::from_string(s.as_str().to_owned())).collect();
        let types: Vec<StrBytes> = options.types.iter().map(|t| StrBytes::from_string(t.as_str().to_owned())).collect();
        let answers = self
            .send_to_all::<ListGroupsRequest, _, _>(
                "ListGroups",
                timeout,
                |v| {
                    if !types.is_empty() && v < 5 {
                        return Err(needs_version::<ListGroupsRequest>("ListGroups with a types filter", 5));
                    }
                    if !states.is_empty() && v < 4 {
                        return Err(needs_version::<ListGroupsRequest>("ListGroups with a states filter", 4));
                    }
                    let mut r = ListGroupsRequest::default();
                    if v >= 4 {
                        r = r.with_states_filter(states.clone());
                    }
                    if v >= 5 {
                        r = r.with_types_filter(types.clone());
                    }
                    Ok(r)
                },
                |r| Error::check_code(r.error_code, "ListGroups", None, None, None),
            )
            .await?;
        let mut groups: BTreeMap<String, GroupListing> = BTreeMap::new();
        let mut errors = Vec::new();
        let n = answers.len();
        for (broker, r) in answers {
            match r {
                Ok(resp) => {
                    for g in resp.groups {
                        let listing = GroupListing {
                            group_id: g.group_id.0.to_string(),
                            protocol_type: g.protocol_type.to_string(),
                            state: (!g.group_state.is_empty()).then(|| GroupState::parse(&g.group_state)),
                            group_type: (!g.group_type.is_empty()).then(|| GroupType::parse(&g.group_type)),
                        };
                        groups.insert(listing.group_id.clone(), listing);
                    }
                }
                Err(e) => errors.push((broker, e)),
            }
        }
        if errors.len() == n && n > 0 {
            return Err(errors.swap_remove(0).1);
        }
        Ok(ListGroupsResult { groups: groups.into_values().collect(), errors })
    }

    /// Describes consumer groups of both protocols: each group is first asked for with
    /// ConsumerGroupDescribe (KIP-848); a group the coordinator does not know as a consumer
    /// group (GROUP_ID_NOT_FOUND, or UNSUPPORTED_VERSION from a 3.x broker with the new
    /// protocol off), or every group on a broker without that API, is asked
    /// for with DescribeGroups, as the Java client does. A classic group whose protocol type
    /// is neither `consumer` nor empty is an `InvalidArgument` error naming its type. A group
    /// that does not exist is, depending on the broker, GROUP_ID_NOT_FOUND or a description in
    /// state `Dead`.
    pub async fn describe_consumer_groups<S: AsRef<str>>(
        &self,
        group_ids: impl IntoIterator<Item = S>,
        options: DescribeGroupsOptions,
    ) -> Result<Vec<GroupResult<ConsumerGroupDescription>>> {
        let ids: Vec<String> = group_ids.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let timeout = self.call_timeout(options.timeout);
        let auth = options.include_authorized_operations;
        Ok(self
            .per_group("DescribeConsumerGroups", ids, timeout, |conn, node, gs| async move {
                let coordinator = self.broker_info(node).await;
                let mut out = Vec::new();
                let mut classic = Vec::new();
                match conn.version_for::<ConsumerGroupDescribeRequest>() {
                    Err(Error::UnsupportedVersion { .. }) => classic = gs,
                    Err(e) => return Err(e),
                    Ok(v) => {
                        let req = ConsumerGroupDescribeRequest::default()
                            .with_group_ids(gs.iter().map(|g| group_id(g)).collect())
                            .with_include_authorized_operations(auth);
                        let resp = conn.send_at(&req, v).await?;
                        for g in resp.groups {
                            let id = g.group_id.0.to_string();
                            if !gs.contains(&id) {
                                continue;
                            }
                            // Not a consumer-protocol group (or, on 3.9 with the
                            // protocol off, UNSUPPORTED_VERSION): ask DescribeGroups.
                            if g.error_code == ErrorCode::GroupIdNotFound.code()
                                || g.error_code == ErrorCode::UnsupportedVersion.code()
                            {
                                classic.push(id);
                                continue;
                            }
                            let r = group_error(g.error_code, "ConsumerGroupDescribe", g.error_message.as_deref(), &id).map(|()| {
                                let assignment = |a: &kafka_protocol::messages::consumer_group_describe_response::Assignment| {
                                    sorted(
                                        a.topic_partitions
                                            .iter()
                                            .flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.topic_name.0.to_string(), *p)))
                                            .collect(),
                                    )
                                };
                                ConsumerGroupDescription {
                                    group_id: id.clone(),
                                    is_simple_consumer_group: false,
                                    members: g
                                        .members
                                        .iter()
                                        .map(|m| MemberDescription {
                                            consumer_id: m.member_id.to_string(),
                                            group_instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                                            client_id: m.client_id.to_string(),
                                            host: m.client_host.to_string(),
                                            assignment: assignment(&m.assignment),
                                            target_assignment: Some(assignment(&m.target_assignment)),
                                            member_epoch: Some(m.member_epoch),
                                        })
                                        .collect(),
                                    partition_assignor: g.assignor_name.to_string(),
                                    group_type: GroupType::Consumer,
                                    state: GroupState::parse(&g.group_state),
                                    coordinator: coordinator.clone(),
                                    authorized_operations: AclOperation::from_bitfield(g.authorized_operations),
                                    group_epoch: Some(g.group_epoch),
                                    target_assignment_epoch: Some(g.assignment_epoch),
                                }
                            });
                            out.push((id, r));
                        }
                    }
                }
                if !classic.is_empty() {
                    for (id, r) in self.describe_groups_at(&conn, &classic, auth, &coordinator).await? {
                        out.push((
                            id.clone(),
                            r.and_then(|d| {
                                if d.protocol != consumer_protocol::PROTOCOL_TYPE && !d.protocol.is_empty() {
                                    return Err(Error::InvalidArgument(format!(
                                        "group {id} is not a consumer group (protocol type {})",
                                        d.protocol
                                    )));
                                }
                                Ok(ConsumerGroupDescription {
                                    group_id: id.clone(),
                                    is_simple_consumer_group: d.protocol.is_empty(),
                                    members: d
                                        .members
                                        .into_iter()
                                        .map(|m| MemberDescription {
                                            consumer_id: m.member_id,
                                            group_instance_id: m.group_instance_id,
                                            client_id: m.client_id,
                                            host: m.host,
                                            assignment: m.assignment.unwrap_or_default(),
                                            target_assignment: None,
                                            member_epoch: None,
                                        })
                                        .collect(),
                                    partition_assignor: d.protocol_data,
                                    group_type: GroupType::Classic,
                                    state: d.state,
                                    coordinator: d.coordinator,
                                    authorized_operations: d.authorized_operations,
                                    group_epoch: None,
                                    target_assignment_epoch: None,
                                })
                            }),
                        ));
                    }
                }
                Ok(out)
            })
            .await)
    }

    /// Describes classic groups of any protocol type (DescribeGroups): members with their
    /// metadata and assignment bytes (decoded for protocol type `consumer`), the chosen
    /// protocol, state and coordinator.
    pub async fn describe_classic_groups<S: AsRef<str>>(
        &self,
        group_ids: impl IntoIterator<Item = S>,
        options: DescribeGroupsOptions,
    ) -> Result<Vec<GroupResult<ClassicGroupDescription>>> {
        let ids: Vec<String> = group_ids.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let timeout = self.call_timeout(options.timeout);
        let auth = options.include_authorized_operations;
        Ok(self
            .per_group("DescribeGroups", ids, timeout, |conn, node, gs| async move {
                let coordinator = self.broker_info(node).await;
                self.describe_groups_at(&conn, &gs, auth, &coordinator).await
            })
            .await)
    }

    /// One DescribeGroups request for `groups` at their coordinator.
    async fn describe_groups_at(
        &self,
        conn: &BrokerConnection,
        groups: &[String],
        auth: bool,
        coordinator: &BrokerInfo,
    ) -> Result<Vec<(String, Result<ClassicGroupDescription>)>> {
        let v = conn.version_for::<DescribeGroupsRequest>()?;
        let mut req = DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| group_id(g)).collect());
        if v >= 3 {
            req = req.with_include_authorized_operations(auth);
        }
        let resp = conn.send_at(&req, v).await?;
        let mut out = Vec::new();
        for g in resp.groups {
            let id = g.group_id.0.to_string();
            if !groups.contains(&id) {
                continue;
            }
            let r = group_error(g.error_code, "DescribeGroups", g.error_message.as_deref(), &id).and_then(|()| {
                let protocol = g.protocol_type.to_string();
                let is_consumer = protocol == consumer_protocol::PROTOCOL_TYPE;
                let members = g
                    .members
                    .iter()
                    .map(|m| {
                        Ok(ClassicMemberDescription {
                            member_id: m.member_id.to_string(),
                            group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                            client_id: m.client_id.to_string(),
                            host: m.client_host.to_string(),
                            metadata: m.member_metadata.clone(),
                            assignment_bytes: m.member_assignment.clone(),
                            assignment: if is_consumer { Some(decode_classic_assignment(&m.member_assignment)?) } else { None },
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(ClassicGroupDescription {
                    group_id: id.clone(),
                    protocol,
                    protocol_data: g.protocol_data.to_string(),
                    members,
                    state: GroupState::parse(&g.group_state),
                    coordinator: coordinator.clone(),
                    authorized_operations: if v >= 3 { AclOperation::from_bitfield(g.authorized_operations) } else { None },
                })
            });
            out.push((id, r));
        }
        Ok(out)
    }

    /// Deletes groups (DeleteGroups, the groups of one coordinator in one request): each
    /// group's result is `Ok` or its error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP while it has
    /// members, ...).
    pub async fn delete_consumer_groups<S: AsRef<str>>(
        &self,
        group_ids: impl IntoIterator<Item = S>,
        options: GroupCallOptions,
    ) -> Result<Vec<GroupResult<()>>> {
        let ids: Vec<String> = group_ids.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let timeout = self.call_timeout(options.timeout);
        Ok(self
            .per_group("DeleteGroups", ids, timeout, |conn, _node, gs| async move {
                let v = conn.version_for::<DeleteGroupsRequest>()?;
                let req = DeleteGroupsRequest::default().with_groups_names(gs.iter().map(|g| group_id(g)).collect());
                let resp = conn.send_at(&req, v).await?;
                Ok(resp
                    .results
                    .into_iter()
                    .map(|r| {
                        let id = r.group_id.0.to_string();
                        let res = group_error(r.error_code, "DeleteGroups", None, &id);
                        (id, res)
                    })
                    .collect())
            })
            .await)
    }

    /// The committed offsets of several groups (Java's `listConsumerGroupOffsets` with a
    /// spec per group): OffsetFetch v8+ carries all the groups of one coordinator in one
    /// request; older brokers get one request per group. Partitions asked for by name
    /// without a committed offset are `None`.
    pub async fn list_consumer_group_offsets(
        &self,
        groups: impl IntoIterator<Item = (String, ListConsumerGroupOffsetsSpec)>,
        options: ListConsumerGroupOffsetsOptions,
    ) -> Result<Vec<GroupResult<GroupOffsets>>> {
        let specs: Vec<(String, ListConsumerGroupOffsetsSpec)> = groups.into_iter().collect();
        let mut by_id: HashMap<String, Option<Vec<TopicPartition>>> = HashMap::new();
        for (g, s) in &specs {
            if let Some(ps) = &s.partitions {
                if let Some(tp) = ps.iter().find(|tp| tp.partition < 0 || tp.topic.is_empty()) {
                    return Err(Error::InvalidArgument(format!(
                        "group {g}: invalid partition {}-{} to list offsets of",
                        tp.topic, tp.partition
                    )));
                }
            }
            by_id.entry(g.clone()).or_insert_with(|| s.partitions.clone());
        }
        let timeout = self.call_timeout(options.timeout);
        let stable = options.require_stable;
        let by_id = &by_id;
        Ok(self
            .per_group("OffsetFetch", specs.iter().map(|(g, _)| g.clone()).collect(), timeout, |conn, _node, gs| async move {
                let v = conn.version_for::<OffsetFetchRequest>()?;
                let want = |g: &String| by_id.get(g).cloned().flatten();
                let mut out = Vec::new();
                if v >= 8 {
                    let req = OffsetFetchRequest::default().with_require_stable(stable).with_groups(
                        gs.iter()
                            .map(|g| {
                                OffsetFetchRequestGroup::default().with_group_id(group_id(g)).with_topics(want(g).map(|tps| {
                                    by_topic(&tps)
                                        .into_iter()
                                        .map(|(t, ps)| OffsetFetchRequestTopics::default().with_name(topic_name(&t)).with_partition_indexes(ps))
                                        .collect()
                                }))
                            })
                            .collect(),
                    );
                    let resp = conn.send_at(&req, v).await?;
                    for g in resp.groups {
                        let id = g.group_id.0.to_string();
                        let r = group_error(g.error_code, "OffsetFetch", None, &id).and_then(|()| {
                            let mut m = GroupOffsets::new();
                            for t in &g.topics {
                                for p in &t.partitions {
                                    add_offset(&mut m, &id, t.name.0.as_str(), p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata.as_ref(), p.error_code)?;
                                }
                            }
                            Ok(m)
                        });
                        out.push((id, r));
                    }
                } else {
                    for g in &gs {
                        let mut req = OffsetFetchRequest::default().with_group_id(group_id(g)).with_topics(want(g).map(|tps| {
                            by_topic(&tps)
                                .into_iter()
                                .map(|(t, ps)| OffsetFetchRequestTopic::default().with_name(topic_name(&t)).with_partition_indexes(ps))
                                .collect()
                        }));
                        if v >= 7 {
                            req = req.with_require_stable(stable);
                        }
                        let resp = conn.send_at(&req, v).await?;
                        let r = group_error(resp.error_code, "OffsetFetch", None, g).and_then(|()| {
                            let mut m = GroupOffsets::new();
                            for t in &resp.topics {
                                for p in &t.partitions {
                                    add_offset(&mut m, g, t.name.0.as_str(), p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata.as_ref(), p.error_code)?;
                                }
                            }
                            Ok(m)
                        });
                        out.push((g.clone(), r));
                    }
                }
                Ok(out)
            })
            .await)
    }

    /// Commits offsets for a group as a simple commit (OffsetCommit, generation -1, no
    /// member id), as Java's `alterConsumerGroupOffsets`: the coordinator refuses it
    /// (UNKNOWN_MEMBER_ID) while the group has active members. The outer error is the
    /// group's (coordinator, authorization); each partition has its own result.
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        options: GroupCallOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        if group.is_empty() {
            return Err(empty_group_id());
        }
        if let Some((tp, o)) = offsets.iter().find(|(tp, o)| o.offset < 0 || tp.partition < 0 || tp.topic.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "group {group}: invalid offset {} for {}-{}",
                o.offset, tp.topic, tp.partition
            )));
        }
        if offsets.is_empty() {
            return Ok(BTreeMap::new());
        }
        let timeout = self.call_timeout(options.timeout);
        let offsets = &offsets;
        let mut r = self
            .per_coordinator(GROUP_KEY, "OffsetCommit", &[group.to_owned()], timeout, |conn, _node, _gs| async move {
                let v = conn.version_for::<OffsetCommitRequest>()?;
                let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
                for (tp, om) in offsets {
                    let p = OffsetCommitRequestPartition::default()
                        .with_partition_index(tp.partition)
                        .with_committed_offset(om.offset)
                        .with_committed_leader_epoch(if v >= 6 { om.leader_epoch.unwrap_or(-1) } else { -1 })
                        .with_committed_metadata(Some(StrBytes::from_string(om.metadata.clone())));
                    match topics.last_mut() {
                        Some(t) if t.name.0.as_str() == tp.topic => t.partitions.push(p),
                        _ => topics.push(OffsetCommitRequestTopic::default().with_name(topic_name(&tp.topic)).with_partitions(vec![p])),
                    }
                }
                let req = OffsetCommitRequest::default()
                    .with_group_id(group_id(group))
                    .with_generation_id_or_member_epoch(-1)
                    .with_member_id(StrBytes::default())
                    .with_topics(topics);
                let resp = conn.send_at(&req, v).await?;
                let mut per = BTreeMap::new();
                for t in resp.topics {
                    for p in t.partitions {
                        let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                        let e = Error::check_code(p.error_code, "OffsetCommit", None, Some(&tp.topic), Some(tp.partition));
                        // A coordinator-level error comes back on every partition: retry or
                        // fail the whole group, as Java does.
                        if let Err(e) = &e {
                            if is_group_level(e) {
                                return Ok(vec![(group.to_owned(), Err(e.clone()))]);
                            }
                        }
                        per.insert(tp, e);
                    }
                }
                Ok(vec![(group.to_owned(), Ok(per))])
            })
            .await;
        let per = r.remove(group).unwrap_or_else(|| Err(no_result(group)))?;
        Ok(with_missing(per, offsets.keys(), "OffsetCommit"))
    }

    /// Deletes committed offsets of a group (OffsetDelete): the outer error is the group's
    /// (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, ...); each partition has its own result
    /// (GROUP_SUBSCRIBED_TO_TOPIC while a member is subscribed to its topic).
    pub async fn delete_consumer_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        options: GroupCallOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        if group.is_empty() {
            return Err(empty_group_id());
        }
        if let Some(tp) = partitions.iter().find(|tp| tp.partition < 0 || tp.topic.is_empty()) {
            return Err(Error::InvalidArgument(format!("group {group}: invalid partition {}-{}", tp.topic, tp.partition)));
        }
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let timeout = self.call_timeout(options.timeout);
        let mut r = self
            .per_coordinator(GROUP_KEY, "OffsetDelete", &[group.to_owned()], timeout, |conn, _node, _gs| async move {
                let v = conn.version_for::<OffsetDeleteRequest>()?;
                let req = OffsetDeleteRequest::default().with_group_id(group_id(group)).with_topics(
                    by_topic(partitions)
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetDeleteRequestTopic::default().with_name(topic_name(&t)).with_partitions(
                                ps.into_iter().map(|p| OffsetDeleteRequestPartition::default().with_partition_index(p)).collect(),
                            )
                        })
                        .collect(),
                );
                let resp = conn.send_at(&req, v).await?;
                if let Err(e) = group_error(resp.error_code, "OffsetDelete", None, group) {
                    return Ok(vec![(group.to_owned(), Err(e))]);
                }
                let mut per = BTreeMap::new();
                for t in resp.topics {
                    for p in t.partitions {
                        let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                        let e = Error::check_code(p.error_code, "OffsetDelete", None, Some(&tp.topic), Some(tp.partition));
                        per.insert(tp, e);
                    }
                }
                Ok(vec![(group.to_owned(), Ok(per))])
            })
            .await;
        let per = r.remove(group).unwrap_or_else(|| Err(no_result(group)))?;
        Ok(with_missing(per, partitions, "OffsetDelete"))
    }

    /// Removes members from a group (LeaveGroup v3+): the static members named in
    /// [`RemoveMembersOptions::members`], or, when it is `None`, every member the group has
    /// now (found with [`AdminClient::describe_consumer_groups`], as the Java client does).
    /// The outer error is the group's; each member has its own result. A broker before
    /// LeaveGroup v3 is `UnsupportedVersion`. Members of a KIP-848 group that speak the
    /// consumer protocol are answered UNKNOWN_MEMBER_ID by the coordinator (only members
    /// using the classic protocol leave through LeaveGroup), as with the Java client.
    pub async fn remove_members_from_consumer_group(
        &self,
        group: &str,
        options: RemoveMembersOptions,
    ) -> Result<Vec<RemovedMember>> {
        if group.is_empty() {
            return Err(empty_group_id());
        }
        if let Some(ms) = &options.members {
            if ms.iter().any(|m| m.group_instance_id.is_empty()) {
                return Err(Error::InvalidArgument(format!("group {group}: a member to remove needs a group instance id")));
            }
        }
        let timeout = self.call_timeout(options.timeout);
        let deadline = Instant::now() + timeout;
        let members: Vec<(String, Option<String>)> = match &options.members {
            Some(ms) => ms.iter().map(|m| (String::new(), Some(m.group_instance_id.clone()))).collect(),
            None => {
                let mut d = self
                    .describe_consumer_groups([group], DescribeGroupsOptions { include_authorized_operations: false, timeout: Some(timeout) })
                    .await?;
                let d = d.pop().map(|r| r.result).unwrap_or_else(|| Err(no_result(group)))?;
                d.members.into_iter().map(|m| (m.consumer_id, m.group_instance_id)).collect()
            }
        };
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let reason = match &options.reason {
            Some(r) if !r.is_empty() => format!("{DEFAULT_LEAVE_GROUP_REASON}: {r}"),
            _ => DEFAULT_LEAVE_GROUP_REASON.to_owned(),
        };
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let (members, reason) = (&members, &reason);
        let mut r = self
            .per_coordinator(GROUP_KEY, "LeaveGroup", &[group.to_owned()], left, |conn, _node, _gs| async move {
                let v = conn.version_for::<LeaveGroupRequest>()?;
                require_version::<LeaveGroupRequest>(&conn, v, 3, "LeaveGroup of chosen members (KIP-345)")?;
                let req = LeaveGroupRequest::default().with_group_id(group_id(group)).with_members(
                    members
                        .iter()
                        .map(|(id, inst)| {
                            let mut m = MemberIdentity::default()
                                .with_member_id(StrBytes::from_string(id.clone()))
                                .with_group_instance_id(inst.clone().map(StrBytes::from_string));
                            if v >= 5 {
                                m = m.with_reason(Some(StrBytes::from_string(reason.clone())));
                            }
                            m
                        })
                        .collect(),
                );
                let resp = conn.send_at(&req, v).await?;
                if let Err(e) = group_error(resp.error_code, "LeaveGroup", None, group) {
                    return Ok(vec![(group.to_owned(), Err(e))]);
                }
                let out: Vec<RemovedMember> = resp
                    .members
                    .into_iter()
                    .map(|m| {
                        let member_id = m.member_id.to_string();
                        let inst = m.group_instance_id.map(|s| s.to_string());
                        let who = inst.clone().unwrap_or_else(|| member_id.clone());
                        RemovedMember {
                            result: group_error(m.error_code, "LeaveGroup", Some(&format!("member {who}")), group),
                            member_id,
                            group_instance_id: inst,
                        }
                    })
                    .collect();
                Ok(vec![(group.to_owned(), Ok(out))])
            })
            .await;
        r.remove(group).unwrap_or_else(|| Err(no_result(group)))
    }
}

/// Partitions grouped by topic, each topic's partitions sorted.
pub(crate) fn by_topic(tps: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut m: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        m.entry(tp.topic.clone()).or_default().push(tp.partition);
    }
    for ps in m.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    m
}

/// Per-partition results with an error for each partition asked for that the answer
/// left out.
fn with_missing<'a>(
    mut per: BTreeMap<TopicPartition, Result<()>>,
    asked: impl IntoIterator<Item = &'a TopicPartition>,
    api: &'static str,
) -> BTreeMap<TopicPartition, Result<()>> {
    for tp in asked {
        per.entry(tp.clone()).or_insert_with(|| {
            Err(Error::broker(
                ErrorCode::UnknownTopicOrPartition,
                api,
                Some("the coordinator's answer has no result for the partition".into()),
                Some(tp.topic.clone()),
                Some(tp.partition),
            ))
        });
    }
    per
}

/// An error a coordinator returns for the whole group (on each partition of an
/// OffsetCommit answer).
fn is_group_level(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(
            ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::GroupAuthorizationFailed
                | ErrorCode::InvalidGroupId
                | ErrorCode::UnknownMemberId
                | ErrorCode::IllegalGeneration
                | ErrorCode::RebalanceInProgress
                | ErrorCode::StaleMemberEpoch
        )
    )
}

/// One partition of an OffsetFetch answer into `m`. A retriable partition error
/// (UNSTABLE_OFFSET_COMMIT under require_stable) fails the group's attempt so that it is
/// retried; another partition error fails the group with the error naming the partition.
#[allow(clippy::too_many_arguments)]
fn add_offset(
    m: &mut GroupOffsets,
    group: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    epoch: i32,
    metadata: Option<&StrBytes>,
    code: i16,
) -> Result<()> {
    Error::check_code(code, "OffsetFetch", Some(&format!("group {group}")), Some(topic), Some(partition))?;
    m.insert(
        TopicPartition::new(topic, partition),
        (offset >= 0).then(|| OffsetAndMetadata {
            offset,
            leader_epoch: (epoch >= 0).then_some(epoch),
            metadata: metadata.map(|s| s.to_string()).unwrap_or_default(),
        }),
    );
    Ok(())
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_bits_name_java_operations() {
        use AclOperation::*;
        assert_eq!(AclOperation::from_bitfield(i32::MIN), None);
        assert_eq!(AclOperation::from_bitfield(0), Some(BTreeSet::new()));
        // UNKNOWN (0), ANY (1), ALL (2) and a code this client does not know (20) are left out.
        let s = AclOperation::from_bitfield((1 << 3) | (1 << 8) | (1 << 6) | 1 | 2 | 4 | (1 << 20)).unwrap();
        assert_eq!(s, [Read, Delete, Describe].into_iter().collect());
    }

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!(GroupType::parse("consumer"), GroupType::Consumer);
        assert_eq!(GroupType::parse("Classic"), GroupType::Classic);
        assert_eq!(GroupType::parse("x"), GroupType::Other("x".into()));
        assert_eq!(GroupState::parse("Stable"), GroupState::Stable);
        assert_eq!(GroupState::parse("COMPLETINGREBALANCE").as_str(), "CompletingRebalance");
        assert_eq!(dedup(["b", "a", "b", ""]), ["b", "a", ""]);
    }

    #[test]
    fn partitions_group_by_topic_sorted() {
        let m = by_topic(&[TopicPartition::new("b", 2), TopicPartition::new("a", 1), TopicPartition::new("b", 0), TopicPartition::new("b", 2)]);
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![("a".into(), vec![1]), ("b".into(), vec![0, 2])]);
    }
}
