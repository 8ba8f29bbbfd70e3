//! The group coordinators (classic and KIP-848) against a scripted broker on a TCP socket:
//! the client's own handling of the group protocol's answers — MEMBER_ID_REQUIRED, the
//! leader's assignment, coordinator moves, commit errors, fencing, malformed ConsumerProtocol
//! bytes, rebalance callbacks, KIP-848 reconciliation and fencing. No claim about real
//! broker behaviour is made here (tests/integration/group.rs does that).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment as CghAssignment, TopicPartitions};
use kafka_protocol::messages::find_coordinator_response::Coordinator as FcCoordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, FetchRequest,
    FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};

use super::consumer_protocol::tests::java_vector;
use super::consumer_protocol::decode_assignment;
use super::{ConsumerRebalanceListener, GroupProtocol};
use crate::consumer::{Consumer, ConsumerConfig, OffsetAndMetadata, RangeAssignor, TopicPartition};
use crate::error::{Error, ErrorCode};
use crate::network::testing::{api_versions, encode_response, partitions_on_node_0, Received, TcpBroker, TcpReply};

const FETCH: i16 = 1;
const METADATA: i16 = 3;
const COMMIT: i16 = 8;
const OFFSET_FETCH: i16 = 9;
const FIND: i16 = 10;
const JOIN: i16 = 11;
const HEARTBEAT: i16 = 12;
const LEAVE: i16 = 13;
const SYNC: i16 = 14;
const VERSIONS: i16 = 18;
const CGH: i16 = 68;

/// A Kafka 4.x broker's ranges for the APIs here (Fetch capped below topic ids).
const CLASSIC: &[(i16, i16, i16)] = &[
    (VERSIONS, 0, 4),
    (METADATA, 0, 12),
    (FETCH, 4, 12),
    (2, 1, 10),
    (COMMIT, 2, 9),
    (OFFSET_FETCH, 1, 9),
    (FIND, 0, 6),
    (JOIN, 0, 9),
    (HEARTBEAT, 0, 4),
    (LEAVE, 0, 5),
    (SYNC, 0, 5),
];

fn with_cgh() -> Vec<(i16, i16, i16)> {
    let mut v = CLASSIC.to_vec();
    v.push((CGH, 0, 1));
    v
}

/// Topics the scripted cluster has: name, partitions, topic id.
const TOPICS: &[(&str, i32, u128)] = &[("t", 2, 0x11), ("topic-a", 3, 0x22), ("topic-b", 2, 0x33)];

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

/// Every request the broker received: api key, version, body.
#[derive(Default)]
struct Log(Mutex<Vec<(i16, i16, Bytes)>>);

impl Log {
    fn count(&self, key: i16) -> usize {
        self.0.lock().unwrap().iter().filter(|(k, _, _)| *k == key).count()
    }

    fn all<R: Request>(&self, key: i16) -> Vec<R> {
        let v = self.0.lock().unwrap();
        v.iter()
            .filter(|(k, _, _)| *k == key)
            .map(|(_, ver, body)| R::decode(&mut body.clone(), *ver).expect("decodable request"))
            .collect()
    }
}

fn frame<R: Request>(req: &Received, resp: &R::Response) -> TcpReply {
    TcpReply::Frame(encode_response::<R>(req.header.correlation_id, req.header.request_api_version, resp))
}

/// What a test's handler returns: `None` for the default answer.
type Script = dyn Fn(&Received, &Log) -> Option<TcpReply> + Send + Sync;

/// A one-broker cluster (node 0, coordinator of every group) answering ApiVersions
/// (`ranges`), Metadata, FindCoordinator, OffsetFetch (offset 0 committed for everything),
/// OffsetCommit, Heartbeat, LeaveGroup, Fetch (nothing, after 100 ms) and, as the only
/// member and leader of the group, JoinGroup (MEMBER_ID_REQUIRED first, id "m-1") and
/// SyncGroup (echoing the leader's assignment). `script` answers first.
async fn broker(ranges: Vec<(i16, i16, i16)>, script: impl Fn(&Received, &Log) -> Option<TcpReply> + Send + Sync + 'static) -> (TcpBroker, Arc<Log>) {
    let log = Arc::new(Log::default());
    let l = log.clone();
    let script: Box<Script> = Box::new(script);
    let b = TcpBroker::start(move |req, host, port| {
        let key = req.header.request_api_key;
        l.0.lock().unwrap().push((key, req.header.request_api_version, req.body.clone()));
        if let Some(r) = script(req, &l) {
            return r;
        }
        default_reply(req, &ranges, host, port, &l)
    })
    .await;
    (b, log)
}

fn default_reply(req: &Received, ranges: &[(i16, i16, i16)], host: &str, port: i32, log: &Log) -> TcpReply {
    let version = req.header.request_api_version;
    match req.header.request_api_key {
        VERSIONS => frame::<ApiVersionsRequest>(req, &api_versions(ranges)),
        METADATA => frame::<MetadataRequest>(req, &metadata(host, port)),
        FIND => {
            let resp = if version >= 4 {
                FindCoordinatorResponse::default().with_coordinators(vec![FcCoordinator::default()
                    .with_key(sb("g"))
                    .with_node_id(BrokerId(0))
                    .with_host(sb(host))
                    .with_port(port)])
            } else {
                FindCoordinatorResponse::default().with_node_id(BrokerId(0)).with_host(sb(host)).with_port(port)
            };
            frame::<FindCoordinatorRequest>(req, &resp)
        }
        JOIN => sole_join(req, log, None),
        SYNC => echo_sync(req, None),
        HEARTBEAT => frame::<HeartbeatRequest>(req, &HeartbeatResponse::default()),
        LEAVE => frame::<LeaveGroupRequest>(req, &LeaveGroupResponse::default()),
        COMMIT => commit_answer(req, 0),
        OFFSET_FETCH => {
            let r = req.decode::<OffsetFetchRequest>();
            let topics = r
                .groups
                .first()
                .and_then(|g| g.topics.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    let ps = t
                        .partition_indexes
                        .iter()
                        .map(|p| OffsetFetchResponsePartitions::default().with_partition_index(*p).with_committed_offset(0))
                        .collect();
                    OffsetFetchResponseTopics::default().with_name(t.name).with_partitions(ps)
                })
                .collect();
            let resp = OffsetFetchResponse::default()
                .with_groups(vec![OffsetFetchResponseGroup::default().with_group_id(sb("g").into()).with_topics(topics)]);
            frame::<OffsetFetchRequest>(req, &resp)
        }
        FETCH => TcpReply::Delayed(
            Duration::from_millis(100),
            encode_response::<FetchRequest>(req.header.correlation_id, version, &FetchResponse::default()),
        ),
        CGH => frame::<ConsumerGroupHeartbeatRequest>(req, &cgh_answer(req, None)),
        _ => TcpReply::Close,
    }
}

fn metadata(host: &str, port: i32) -> MetadataResponse {
    let topics = TOPICS
        .iter()
        .map(|(name, n, id)| {
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(sb(name))))
                .with_topic_id(uuid::Uuid::from_u128(*id))
                .with_partitions(partitions_on_node_0(*n))
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default().with_node_id(BrokerId(0)).with_host(sb(host)).with_port(port)])
        .with_controller_id(BrokerId(0))
        .with_topics(topics)
}

/// JoinGroup as the group's only member (plus `others`: member id and subscription bytes),
/// and its leader. An empty member id gets MEMBER_ID_REQUIRED with "m-1".
fn sole_join(req: &Received, log: &Log, others: Option<&[(&str, Bytes)]>) -> TcpReply {
    let r = req.decode::<JoinGroupRequest>();
    if r.member_id.is_empty() && req.header.request_api_version >= 4 {
        let resp = JoinGroupResponse::default()
            .with_error_code(ErrorCode::MemberIdRequired.code())
            .with_member_id(sb("m-1"))
            .with_generation_id(-1);
        return frame::<JoinGroupRequest>(req, &resp);
    }
    let id = if r.member_id.is_empty() { sb("m-1") } else { r.member_id.clone() };
    let proto = r.protocols.first().expect("a protocol");
    let mut members = vec![JoinGroupResponseMember::default().with_member_id(id.clone()).with_metadata(proto.metadata.clone())];
    for (m, md) in others.unwrap_or_default() {
        members.push(JoinGroupResponseMember::default().with_member_id(sb(m)).with_metadata(md.clone()));
    }
    let resp = JoinGroupResponse::default()
        .with_generation_id(log.count(JOIN) as i32)
        .with_protocol_name(Some(proto.name.clone()))
        .with_leader(id.clone())
        .with_member_id(id)
        .with_members(members);
    frame::<JoinGroupRequest>(req, &resp)
}

/// SyncGroup: the leader's assignment for the requesting member, or `raw`.
fn echo_sync(req: &Received, raw: Option<Bytes>) -> TcpReply {
    let r = req.decode::<SyncGroupRequest>();
    let mine = r.assignments.iter().find(|a| a.member_id == r.member_id).map(|a| a.assignment.clone());
    let resp = SyncGroupResponse::default().with_assignment(raw.or(mine).unwrap_or_default());
    frame::<SyncGroupRequest>(req, &resp)
}

fn commit_answer(req: &Received, code: i16) -> TcpReply {
    let r = req.decode::<OffsetCommitRequest>();
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let ps = t
                .partitions
                .iter()
                .map(|p| OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code))
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(ps)
        })
        .collect();
    frame::<OffsetCommitRequest>(req, &OffsetCommitResponse::default().with_topics(topics))
}

/// KIP-848: epoch 0 joins as epoch 1 with t-0 and t-1 (by topic id); later heartbeats keep
/// the epoch. `code` answers an error instead.
fn cgh_answer(req: &Received, code: Option<ErrorCode>) -> ConsumerGroupHeartbeatResponse {
    let r = req.decode::<ConsumerGroupHeartbeatRequest>();
    if let Some(c) = code {
        return ConsumerGroupHeartbeatResponse::default().with_error_code(c.code()).with_member_epoch(-1);
    }
    let mut resp = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(r.member_id.clone()))
        .with_heartbeat_interval_ms(50);
    if r.member_epoch == 0 {
        resp = resp.with_member_epoch(1).with_assignment(Some(CghAssignment::default().with_topic_partitions(vec![
            TopicPartitions::default().with_topic_id(uuid::Uuid::from_u128(0x11)).with_partitions(vec![1, 0]),
        ])));
    } else {
        resp = resp.with_member_epoch(r.member_epoch.max(1));
    }
    resp
}

/// A subscribing consumer of topic `t` in group `g`, with short timers and the range
/// assignor alone (eager).
async fn consumer(b: &TcpBroker, cfg: impl FnOnce(ConsumerConfig) -> ConsumerConfig) -> Consumer {
    let mut c = ConsumerConfig::new(b.addr())
        .group_id("g")
        .fetch_max_wait(Duration::from_millis(50))
        .heartbeat_interval(Duration::from_millis(50))
        .session_timeout(Duration::from_secs(3))
        .max_poll_interval(Duration::from_secs(5))
        .enable_auto_commit(false)
        .default_api_timeout(Duration::from_secs(3))
        .partition_assignment_strategy(vec![Arc::new(RangeAssignor)]);
    c.client.request_timeout = Duration::from_secs(2);
    c.client.retry_backoff = Duration::from_millis(20);
    Consumer::new(cfg(c)).await.unwrap()
}

/// Polls (100 ms at a time) until `done`, failing on a poll error or after 5 s.
async fn poll_until(c: &Consumer, what: &str, done: impl Fn(&Consumer) -> bool) {
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        while !done(c) {
            c.poll(Duration::from_millis(100)).await?;
        }
        Ok::<(), Error>(())
    })
    .await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{what}: poll failed: {e}"),
        Err(_) => panic!("{what}: not within 5 s; assignment {:?}", c.assignment()),
    }
}

/// Polls until an error, within 5 s.
async fn poll_error(c: &Consumer) -> Error {
    match tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Err(e) = c.poll(Duration::from_millis(100)).await {
                return e;
            }
        }
    })
    .await
    {
        Ok(e) => e,
        Err(_) => panic!("no error within 5 s"),
    }
}

fn assigned_t(c: &Consumer) -> bool {
    c.assignment() == vec![tp("t", 0), tp("t", 1)]
}

/// Waits (up to 5 s) until `cond` holds of the log.
async fn wait_log(log: &Log, what: &str, cond: impl Fn(&Log) -> bool) {
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        while !cond(log) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "{what}: not within 5 s");
}

/// Records the listener's callbacks.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn push(&self, what: &str, ps: &[TopicPartition]) {
        let v: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
        self.0.lock().unwrap().push(format!("{what} {}", v.join(",")));
    }
    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl ConsumerRebalanceListener for Recorder {
    fn on_partitions_revoked<'a>(&'a self, _c: &'a Consumer, ps: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.push("revoked", ps);
        Box::pin(async {})
    }
    fn on_partitions_assigned<'a>(&'a self, _c: &'a Consumer, ps: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.push("assigned", ps);
        Box::pin(async {})
    }
    fn on_partitions_lost<'a>(&'a self, _c: &'a Consumer, ps: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.push("lost", ps);
        Box::pin(async {})
    }
}

#[tokio::test]
async fn member_id_required_then_the_second_join_carries_the_given_id() {
    let (b, log) = broker(CLASSIC.to_vec(), |_, _| None).await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    let joins = log.all::<JoinGroupRequest>(JOIN);
    assert_eq!(joins.len(), 2, "one MEMBER_ID_REQUIRED round, then the join");
    assert_eq!(joins[0].member_id.as_str(), "");
    assert_eq!(joins[1].member_id.as_str(), "m-1");
    let syncs = log.all::<SyncGroupRequest>(SYNC);
    assert_eq!(syncs.len(), 1);
    assert_eq!((syncs[0].member_id.as_str(), syncs[0].generation_id), ("m-1", 2));
    let md = c.group_metadata().unwrap();
    assert_eq!((md.member_id.as_str(), md.generation_id), ("m-1", 2));
}

#[tokio::test]
async fn the_leader_assigns_every_member_including_java_encoded_subscriptions() {
    let others: Vec<(&str, Bytes)> = vec![
        ("java-v0", Bytes::from(java_vector("sub-v0").unwrap())),
        ("java-v3", Bytes::from(java_vector("sub-v3").unwrap())),
    ];
    let (b, log) = broker(CLASSIC.to_vec(), move |req, log| {
        (req.header.request_api_key == JOIN).then(|| sole_join(req, log, Some(&others)))
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    let sync = log.all::<SyncGroupRequest>(SYNC).pop().unwrap();
    let mut members: Vec<&str> = sync.assignments.iter().map(|a| a.member_id.as_str()).collect();
    members.sort();
    assert_eq!(members, ["java-v0", "java-v3", "m-1"]);
    let mut all = BTreeSet::new();
    for a in &sync.assignments {
        let d = decode_assignment(&a.assignment).expect("decodable assignment");
        for p in &d.partitions {
            assert!(all.insert(p.clone()), "{p} assigned twice");
        }
        match a.member_id.as_str() {
            "m-1" => assert_eq!(d.partitions, vec![tp("t", 0), tp("t", 1)]),
            _ => assert!(d.partitions.iter().all(|p| p.topic.starts_with("topic-")), "{:?}", d.partitions),
        }
    }
    let expected: BTreeSet<TopicPartition> = TOPICS.iter().flat_map(|(t, n, _)| (0..*n).map(move |p| tp(t, p))).collect();
    assert_eq!(all, expected, "every partition of every subscribed topic is assigned once");
}

#[tokio::test]
async fn coordinator_loading_then_moved_on_join_group_finds_it_again() {
    let n = Arc::new(AtomicUsize::new(0));
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        if req.header.request_api_key != JOIN {
            return None;
        }
        let code = match n.fetch_add(1, Ordering::SeqCst) {
            0 => ErrorCode::CoordinatorLoadInProgress,
            1 => ErrorCode::NotCoordinator,
            _ => return None,
        };
        let resp = JoinGroupResponse::default().with_error_code(code.code()).with_generation_id(-1);
        Some(frame::<JoinGroupRequest>(req, &resp))
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    let finds_before = log.count(FIND);
    poll_until(&c, "joined", assigned_t).await;
    assert!(log.count(FIND) > finds_before, "NOT_COORDINATOR makes the member look the coordinator up again");
    assert!(log.count(JOIN) >= 4, "two failed joins, MEMBER_ID_REQUIRED, the join");
}

/// A joined consumer whose OffsetCommit answers `code` (while `code` is non-zero).
async fn joined_with_commit_code(code: Arc<AtomicI16>) -> (TcpBroker, Arc<Log>, Consumer) {
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        let c = code.load(Ordering::SeqCst);
        (req.header.request_api_key == COMMIT && c != 0).then(|| commit_answer(req, c))
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    (b, log, c)
}

fn offsets() -> Option<std::collections::BTreeMap<TopicPartition, OffsetAndMetadata>> {
    Some([(tp("t", 0), OffsetAndMetadata::new(5))].into_iter().collect())
}

#[tokio::test]
async fn rebalance_in_progress_from_offset_commit_is_returned_promptly_and_the_next_poll_rejoins() {
    let code = Arc::new(AtomicI16::new(0));
    let (_b, log, c) = joined_with_commit_code(code.clone()).await;
    code.store(ErrorCode::RebalanceInProgress.code(), Ordering::SeqCst);
    let start = std::time::Instant::now();
    let e = c.commit(offsets()).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1), "no waiting: {:?}", start.elapsed());
    assert_eq!(e.code(), Some(ErrorCode::RebalanceInProgress), "{e}");
    code.store(0, Ordering::SeqCst);
    let joins = log.count(JOIN);
    poll_until(&c, "rejoined", |_| log.count(JOIN) > joins).await;
    poll_until(&c, "assigned again", assigned_t).await;
    c.commit(offsets()).await.unwrap();
}

#[tokio::test]
async fn unknown_member_id_from_offset_commit_is_commit_failed_and_the_next_poll_rejoins_afresh() {
    let code = Arc::new(AtomicI16::new(0));
    let (_b, log, c) = joined_with_commit_code(code.clone()).await;
    code.store(ErrorCode::UnknownMemberId.code(), Ordering::SeqCst);
    let e = c.commit(offsets()).await.unwrap_err();
    assert!(matches!(e, Error::CommitFailed(_)), "{e:?}");
    code.store(0, Ordering::SeqCst);
    let commits = log.count(COMMIT);
    let again = c.commit(offsets()).await.unwrap_err();
    assert!(matches!(again, Error::CommitFailed(_)), "still out of the group until a poll: {again:?}");
    assert_eq!(log.count(COMMIT), commits, "refused locally");
    let joins = log.count(JOIN);
    poll_until(&c, "rejoined", |c| log.count(JOIN) > joins && assigned_t(c)).await;
    let after: Vec<JoinGroupRequest> = log.all::<JoinGroupRequest>(JOIN).into_iter().skip(joins).collect();
    assert_eq!(after[0].member_id.as_str(), "", "the member id is gone: join without one");
}

#[tokio::test]
async fn illegal_generation_from_offset_commit_is_commit_failed_and_the_next_poll_rejoins() {
    let code = Arc::new(AtomicI16::new(0));
    let (_b, log, c) = joined_with_commit_code(code.clone()).await;
    code.store(ErrorCode::IllegalGeneration.code(), Ordering::SeqCst);
    let e = c.commit(offsets()).await.unwrap_err();
    assert!(matches!(e, Error::CommitFailed(_)), "{e:?}");
    code.store(0, Ordering::SeqCst);
    let joins = log.count(JOIN);
    poll_until(&c, "rejoined", |c| log.count(JOIN) > joins && assigned_t(c)).await;
    let after: Vec<JoinGroupRequest> = log.all::<JoinGroupRequest>(JOIN).into_iter().skip(joins).collect();
    assert_eq!(after[0].member_id.as_str(), "m-1", "the member id stays");
    c.commit(offsets()).await.unwrap();
}

#[tokio::test]
async fn fenced_instance_id_on_heartbeat_makes_the_next_poll_fail_fatally() {
    let fence = Arc::new(AtomicBool::new(false));
    let f = fence.clone();
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        (req.header.request_api_key == HEARTBEAT && f.load(Ordering::SeqCst)).then(|| {
            let resp = HeartbeatResponse::default().with_error_code(ErrorCode::FencedInstanceId.code());
            frame::<HeartbeatRequest>(req, &resp)
        })
    })
    .await;
    let c = consumer(&b, |c| c.group_instance_id("i-1")).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    fence.store(true, Ordering::SeqCst);
    let e = poll_error(&c).await;
    assert!(e.is_fatal(), "{e:?}");
    assert_eq!(e.code(), Some(ErrorCode::FencedInstanceId));
    let again = c.poll(Duration::from_millis(10)).await.unwrap_err();
    assert!(again.is_fatal(), "stays fatal: {again:?}");
    assert!(c.commit(offsets()).await.unwrap_err().is_fatal());
    // A fenced member stops heartbeating.
    let beats = log.count(HEARTBEAT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(log.count(HEARTBEAT) <= beats + 1, "{} heartbeats after the fence", log.count(HEARTBEAT) - beats);
}

#[tokio::test]
async fn a_malformed_assignment_in_sync_group_is_a_clear_error() {
    let (b, _log) = broker(CLASSIC.to_vec(), |req, _| {
        // v3, then 9 topics that are not there.
        (req.header.request_api_key == SYNC).then(|| echo_sync(req, Some(Bytes::from_static(&[0, 3, 0, 0, 0, 9]))))
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    let e = poll_error(&c).await;
    match &e {
        Error::Protocol { detail, .. } => assert!(detail.contains("assignment") && detail.contains("malformed"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert!(c.assignment().is_empty());
}

#[tokio::test]
async fn a_malformed_member_subscription_at_the_leader_is_a_clear_error() {
    let others: Vec<(&str, Bytes)> = vec![("bad-member", Bytes::from_static(&[0, 1, 0, 0, 0x7f, 0xff, 0, 1]))];
    let (b, log) = broker(CLASSIC.to_vec(), move |req, log| {
        (req.header.request_api_key == JOIN).then(|| sole_join(req, log, Some(&others)))
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    let e = poll_error(&c).await;
    match &e {
        Error::Protocol { detail, .. } => assert!(detail.contains("bad-member") && detail.contains("malformed"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.count(SYNC), 0, "no assignment is sent");
}

#[tokio::test]
async fn heartbeat_rebalance_in_progress_rejoins_with_eager_callbacks() {
    let once = Arc::new(AtomicBool::new(false));
    let o = once.clone();
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        (req.header.request_api_key == HEARTBEAT && o.swap(false, Ordering::SeqCst)).then(|| {
            let resp = HeartbeatResponse::default().with_error_code(ErrorCode::RebalanceInProgress.code());
            frame::<HeartbeatRequest>(req, &resp)
        })
    })
    .await;
    let c = consumer(&b, |c| c).await;
    let rec = Recorder::default();
    c.set_rebalance_listener(rec.clone()).unwrap();
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    once.store(true, Ordering::SeqCst);
    poll_until(&c, "rejoined", |_| rec.events().len() >= 3).await;
    assert_eq!(rec.events(), ["assigned t-0,t-1", "revoked t-0,t-1", "assigned t-0,t-1"]);
    let joins = log.all::<JoinGroupRequest>(JOIN);
    assert_eq!(joins.last().unwrap().member_id.as_str(), "m-1", "rejoins with its member id");
    assert!(assigned_t(&c));
}

#[tokio::test]
async fn kip848_assignment_by_topic_id_is_assigned_then_acknowledged() {
    let (b, log) = broker(with_cgh(), |_, _| None).await;
    let c = consumer(&b, |c| c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![])).await;
    let rec = Recorder::default();
    c.set_rebalance_listener(rec.clone()).unwrap();
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "assigned", assigned_t).await;
    assert_eq!(rec.events(), ["assigned t-0,t-1"]);
    let first = &log.all::<ConsumerGroupHeartbeatRequest>(CGH)[0];
    assert_eq!(first.member_epoch, 0);
    assert_eq!(first.subscribed_topic_names.as_ref().unwrap()[0].0.as_str(), "t");
    let acked = |l: &Log| {
        l.all::<ConsumerGroupHeartbeatRequest>(CGH).iter().any(|r| {
            r.member_epoch == 1
                && r.topic_partitions.as_ref().is_some_and(|tps| {
                    tps.len() == 1 && tps[0].topic_id == uuid::Uuid::from_u128(0x11) && tps[0].partitions == [0, 1]
                })
        })
    };
    wait_log(&log, "the ack heartbeat", acked).await;
    assert_eq!(c.group_metadata().unwrap().generation_id, 1);
}

/// Fencing: lost callback, then a join heartbeat with epoch 0, owning nothing, same id.
async fn assert_fenced_and_rejoined(code: ErrorCode) {
    let (_b, log, c, rec) = kip848_answered_once(code, false).await;
    let id = log.all::<ConsumerGroupHeartbeatRequest>(CGH)[0].member_id.clone();
    let before = log.count(CGH);
    poll_until(&c, "lost and reassigned", |c| rec.events().len() >= 3 && assigned_t(c)).await;
    assert_eq!(rec.events(), ["assigned t-0,t-1", "lost t-0,t-1", "assigned t-0,t-1"], "{code:?}");
    let later: Vec<ConsumerGroupHeartbeatRequest> = log.all(CGH).into_iter().skip(before).collect();
    let rejoin = later.iter().find(|r| r.member_epoch == 0).expect("a heartbeat with epoch 0");
    assert!(rejoin.topic_partitions.as_ref().is_some_and(|t| t.is_empty()), "owns nothing when rejoining");
    assert_eq!(rejoin.member_id, id, "the member id is kept (KIP-1082)");
}

#[tokio::test]
async fn kip848_fenced_member_epoch_loses_the_partitions_and_rejoins_with_epoch_0() {
    assert_fenced_and_rejoined(ErrorCode::FencedMemberEpoch).await;
}

#[tokio::test]
async fn kip848_unknown_member_id_on_heartbeat_is_fencing_too() {
    assert_fenced_and_rejoined(ErrorCode::UnknownMemberId).await;
}

#[tokio::test]
async fn kip848_without_consumer_group_heartbeat_fails_subscribe_with_a_config_error() {
    let (b, _log) = broker(CLASSIC.to_vec(), |_, _| None).await;
    let c = consumer(&b, |c| c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![])).await;
    match c.subscribe(["t"]).await {
        Err(Error::Config(m)) => assert!(m.contains("KIP-848"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// A joined consumer whose next request of kind `key` (after `arm`) is answered `code`
/// after 300 ms; the coordinator connection serves requests in order, so a JoinGroup sent
/// meanwhile is answered after it: the stale answer arrives while the member is joining.
async fn stale_answer_during_join(key: i16, code: ErrorCode) -> (Arc<Log>, Consumer, Recorder, Arc<AtomicBool>, TcpBroker) {
    let arm = Arc::new(AtomicBool::new(false));
    let a = arm.clone();
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        if req.header.request_api_key != key || !a.swap(false, Ordering::SeqCst) {
            return None;
        }
        let bytes = match key {
            HEARTBEAT => encode_response::<HeartbeatRequest>(
                req.header.correlation_id,
                req.header.request_api_version,
                &HeartbeatResponse::default().with_error_code(code.code()),
            ),
            _ => match commit_answer(req, code.code()) {
                TcpReply::Frame(f) => f,
                _ => unreachable!(),
            },
        };
        Some(TcpReply::Delayed(Duration::from_millis(300), bytes))
    })
    .await;
    let c = consumer(&b, |c| c).await;
    let rec = Recorder::default();
    c.set_rebalance_listener(rec.clone()).unwrap();
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    (log, c, rec, arm, b)
}

/// Changes the subscription (a rebalance) and polls until the join completed, then polls on
/// for 600 ms: exactly one more JoinGroup, no partitions lost.
async fn rejoin_once(log: &Log, c: &Consumer, rec: &Recorder, arm: &AtomicBool) {
    let joins = log.count(JOIN);
    c.subscribe(["t", "topic-b"]).await.unwrap();
    poll_until(c, "rejoined", |c| c.assignment().len() == 4).await;
    assert!(!arm.load(Ordering::SeqCst), "the stale answer was sent");
    let until = tokio::time::Instant::now() + Duration::from_millis(600);
    while tokio::time::Instant::now() < until {
        c.poll(Duration::from_millis(100)).await.unwrap();
    }
    assert_eq!(log.count(JOIN), joins + 1, "one rebalance only");
    assert!(rec.events().iter().all(|e| !e.starts_with("lost")), "{:?}", rec.events());
    assert_eq!(c.assignment().len(), 4);
}

/// A heartbeat answered `code` for the old generation, read while the member rejoins.
async fn stale_heartbeat_during_join(code: ErrorCode) {
    let (log, c, rec, arm, _b) = stale_answer_during_join(HEARTBEAT, code).await;
    arm.store(true, Ordering::SeqCst);
    wait_log(&log, "the armed heartbeat", |_| !arm.load(Ordering::SeqCst)).await;
    rejoin_once(&log, &c, &rec, &arm).await;
}

#[tokio::test]
async fn a_stale_heartbeat_rebalance_in_progress_during_a_join_causes_no_second_rebalance() {
    stale_heartbeat_during_join(ErrorCode::RebalanceInProgress).await;
}

#[tokio::test]
async fn a_stale_heartbeat_illegal_generation_during_a_join_loses_nothing() {
    stale_heartbeat_during_join(ErrorCode::IllegalGeneration).await;
}

#[tokio::test]
async fn a_stale_commit_illegal_generation_during_a_join_loses_nothing() {
    let (log, c, rec, arm, _b) = stale_answer_during_join(COMMIT, ErrorCode::IllegalGeneration).await;
    arm.store(true, Ordering::SeqCst);
    let commit = c.commit_async(offsets());
    wait_log(&log, "the armed commit", |_| !arm.load(Ordering::SeqCst)).await;
    rejoin_once(&log, &c, &rec, &arm).await;
    let e = commit.await.unwrap_err();
    assert!(matches!(e, Error::CommitFailed(_)), "{e:?}");
}

#[tokio::test]
async fn kip848_unknown_member_id_from_offset_commit_keeps_the_client_generated_member_id() {
    let code = Arc::new(AtomicI16::new(0));
    let k = code.clone();
    let (b, log) = broker(with_cgh(), move |req, _| {
        let c = k.load(Ordering::SeqCst);
        (req.header.request_api_key == COMMIT && c != 0).then(|| commit_answer(req, c))
    })
    .await;
    let c = consumer(&b, |c| c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![])).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "assigned", assigned_t).await;
    let id = c.group_metadata().unwrap().member_id;
    assert!(!id.is_empty());
    code.store(ErrorCode::UnknownMemberId.code(), Ordering::SeqCst);
    let e = c.commit(offsets()).await.unwrap_err();
    assert!(matches!(e, Error::CommitFailed(_)), "{e:?}");
    let before = log.count(CGH);
    poll_until(&c, "two more heartbeats", |_| log.count(CGH) >= before + 2).await;
    for r in log.all::<ConsumerGroupHeartbeatRequest>(CGH).iter().skip(before) {
        assert_eq!(r.member_id.as_str(), id, "KIP-1082: the member id is the client's for life");
    }
    assert_eq!(c.group_metadata().unwrap().member_id, id);
}

/// Records the callbacks; the first one named `block` never completes (the application's
/// poll is cancelled in it).
#[derive(Clone)]
struct Blocker {
    rec: Recorder,
    block: &'static str,
    armed: Arc<AtomicBool>,
}

impl Blocker {
    fn new(block: &'static str) -> Blocker {
        Blocker { rec: Recorder::default(), block, armed: Arc::new(AtomicBool::new(true)) }
    }
    fn call<'a>(&'a self, what: &'static str, ps: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.rec.push(what, ps);
        let hang = what == self.block && self.armed.swap(false, Ordering::SeqCst);
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
        })
    }
}

impl ConsumerRebalanceListener for Blocker {
    fn on_partitions_revoked<'a>(&'a self, _c: &'a Consumer, ps: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.call("revoked", ps)
    }
    fn on_partitions_assigned<'a>(&'a self, _c: &'a Consumer, ps: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.call("assigned", ps)
    }
    fn on_partitions_lost<'a>(&'a self, _c: &'a Consumer, ps: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.call("lost", ps)
    }
}

/// Polls until the blocking callback hangs, then drops that poll.
async fn cancel_in_callback(c: &Consumer, l: &Blocker) {
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        while l.armed.load(Ordering::SeqCst) {
            let _ = tokio::time::timeout(Duration::from_millis(100), c.poll(Duration::from_millis(50))).await;
        }
    })
    .await;
    assert!(r.is_ok(), "the {} callback was never called", l.block);
}

#[tokio::test]
async fn a_poll_cancelled_in_on_partitions_lost_leaves_the_lost_partitions_unassigned() {
    let fence = Arc::new(AtomicBool::new(false));
    let f = fence.clone();
    // Fenced once; the rejoin then gets nothing (another member has the partitions now).
    let rejoined = Arc::new(AtomicBool::new(false));
    let r = rejoined.clone();
    let (b, _log) = broker(with_cgh(), move |req, _| {
        if req.header.request_api_key != CGH {
            return None;
        }
        if f.swap(false, Ordering::SeqCst) {
            r.store(true, Ordering::SeqCst);
            return Some(frame::<ConsumerGroupHeartbeatRequest>(req, &cgh_answer(req, Some(ErrorCode::FencedMemberEpoch))));
        }
        let mut resp = cgh_answer(req, None);
        if r.load(Ordering::SeqCst) && req.decode::<ConsumerGroupHeartbeatRequest>().member_epoch == 0 {
            resp = resp.with_member_epoch(2).with_assignment(Some(CghAssignment::default()));
        }
        Some(frame::<ConsumerGroupHeartbeatRequest>(req, &resp))
    })
    .await;
    let c = consumer(&b, |c| c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![])).await;
    let l = Blocker::new("lost");
    c.set_rebalance_listener(l.clone()).unwrap();
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "assigned", assigned_t).await;
    fence.store(true, Ordering::SeqCst);
    cancel_in_callback(&c, &l).await;
    assert!(c.assignment().is_empty(), "lost partitions stay assigned: {:?}", c.assignment());
    poll_until(&c, "rejoined with epoch 2", |c| c.group_metadata().unwrap().generation_id == 2).await;
    assert!(c.assignment().is_empty(), "{:?}", c.assignment());
}

#[tokio::test]
async fn a_poll_cancelled_in_a_cooperative_revocation_completes_it_on_the_next_poll() {
    let (b, log) = broker(CLASSIC.to_vec(), |_, _| None).await;
    let c = consumer(&b, |c| c.partition_assignment_strategy(vec![Arc::new(crate::consumer::CooperativeStickyAssignor)])).await;
    let l = Blocker::new("revoked");
    c.set_rebalance_listener(l.clone()).unwrap();
    c.subscribe(["t", "topic-b"]).await.unwrap();
    poll_until(&c, "assigned", |c| c.assignment().len() == 4).await;
    let joins = log.count(JOIN);
    c.subscribe(["t"]).await.unwrap();
    cancel_in_callback(&c, &l).await;
    poll_until(&c, "topic-b revoked", assigned_t).await;
    assert!(log.count(JOIN) > joins);
    let events = l.rec.events();
    assert_eq!(events.iter().filter(|e| *e == "revoked topic-b-0,topic-b-1").count(), 2, "{events:?}");
    // Stays so.
    for _ in 0..5 {
        c.poll(Duration::from_millis(50)).await.unwrap();
    }
    assert!(assigned_t(&c), "{:?}", c.assignment());
}

#[tokio::test]
async fn kip848_a_heartbeat_answer_arriving_after_unsubscribe_is_ignored() {
    let arm = Arc::new(AtomicBool::new(false));
    let a = arm.clone();
    let (b, log) = broker(with_cgh(), move |req, _| {
        if req.header.request_api_key != CGH
            || req.decode::<ConsumerGroupHeartbeatRequest>().member_epoch <= 0
            || !a.swap(false, Ordering::SeqCst)
        {
            return None;
        }
        // An answer the member only reads after it left: epoch 5, a new assignment.
        let resp = cgh_answer(req, None).with_member_epoch(5).with_assignment(Some(CghAssignment::default().with_topic_partitions(
            vec![TopicPartitions::default().with_topic_id(uuid::Uuid::from_u128(0x33)).with_partitions(vec![0])],
        )));
        let bytes = encode_response::<ConsumerGroupHeartbeatRequest>(req.header.correlation_id, req.header.request_api_version, &resp);
        Some(TcpReply::Delayed(Duration::from_millis(300), bytes))
    })
    .await;
    let c = consumer(&b, |c| c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![])).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "assigned", assigned_t).await;
    arm.store(true, Ordering::SeqCst);
    wait_log(&log, "the armed heartbeat", |_| !arm.load(Ordering::SeqCst)).await;
    // The leave queues behind the delayed answer on the coordinator connection.
    c.unsubscribe().await.unwrap();
    let leave = log.all::<ConsumerGroupHeartbeatRequest>(CGH).pop().unwrap();
    assert_eq!(leave.member_epoch, -1);
    assert_eq!(c.group_metadata().unwrap().generation_id, -1, "not in a group");
    assert!(c.assignment().is_empty());
    let before = log.count(CGH);
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "assigned again", assigned_t).await;
    let join = &log.all::<ConsumerGroupHeartbeatRequest>(CGH)[before];
    assert_eq!(join.member_epoch, 0, "joins afresh");
    assert_eq!(join.topic_partitions.as_deref(), Some(&[][..]), "owning nothing");
}

/// A joined auto-committing member (every `interval`) whose next OffsetCommit, once
/// armed, is answered `code`.
async fn auto_committer(code: ErrorCode, interval: Duration) -> (TcpBroker, Arc<Log>, Consumer, Recorder, Arc<AtomicBool>) {
    let arm = Arc::new(AtomicBool::new(false));
    let a = arm.clone();
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        (req.header.request_api_key == COMMIT && a.swap(false, Ordering::SeqCst)).then(|| commit_answer(req, code.code()))
    })
    .await;
    let c = consumer(&b, |c| c.enable_auto_commit(true).auto_commit_interval(interval)).await;
    let rec = Recorder::default();
    c.set_rebalance_listener(rec.clone()).unwrap();
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    (b, log, c, rec, arm)
}

#[tokio::test]
async fn an_auto_commit_finding_the_membership_gone_before_a_join_does_not_lose_the_new_assignment() {
    let (_b, log, c, rec, arm) = auto_committer(ErrorCode::IllegalGeneration, Duration::from_secs(60)).await;
    arm.store(true, Ordering::SeqCst);
    let joins = log.count(JOIN);
    // The rejoin's auto-commit (before revoking) is answered ILLEGAL_GENERATION.
    c.subscribe(["t", "topic-b"]).await.unwrap();
    poll_until(&c, "rejoined", |c| c.assignment().len() == 4).await;
    assert!(!arm.load(Ordering::SeqCst), "the commit before the join was made");
    for _ in 0..5 {
        c.poll(Duration::from_millis(50)).await.unwrap();
    }
    assert_eq!(c.assignment().len(), 4, "the new assignment is kept: {:?}", rec.events());
    assert!(log.count(JOIN) > joins);
    let events = rec.events();
    assert_eq!(events.first().map(String::as_str), Some("assigned t-0,t-1"));
    assert_eq!(events.last().map(String::as_str), Some("assigned t-0,t-1,topic-b-0,topic-b-1"), "{events:?}");
    assert_eq!(events.len(), 3, "one revocation (or loss) of the old assignment: {events:?}");
}

#[tokio::test]
async fn unstable_offset_commit_on_offset_fetch_is_retried_until_the_offsets_are_stable() {
    let unstable = Arc::new(AtomicUsize::new(2));
    let u = unstable.clone();
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        if req.header.request_api_key != OFFSET_FETCH || u.load(Ordering::SeqCst) == 0 {
            return None;
        }
        u.fetch_sub(1, Ordering::SeqCst);
        let r = req.decode::<OffsetFetchRequest>();
        let topics = r.groups[0]
            .topics
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let ps = t
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(*p)
                            .with_committed_offset(-1)
                            .with_error_code(ErrorCode::UnstableOffsetCommit.code())
                    })
                    .collect();
                OffsetFetchResponseTopics::default().with_name(t.name).with_partitions(ps)
            })
            .collect();
        let resp = OffsetFetchResponse::default()
            .with_groups(vec![OffsetFetchResponseGroup::default().with_group_id(sb("g").into()).with_topics(topics)]);
        Some(frame::<OffsetFetchRequest>(req, &resp))
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(p) = c.position(&tp("t", 0)).await {
                return p;
            }
            c.poll(Duration::from_millis(100)).await.unwrap();
        }
    })
    .await;
    assert_eq!(r.expect("a position within 5 s"), 0, "the committed offset");
    assert_eq!(unstable.load(Ordering::SeqCst), 0);
    assert!(log.all::<OffsetFetchRequest>(OFFSET_FETCH).iter().all(|r| r.require_stable));
}

#[tokio::test]
async fn close_during_the_first_join_leaves_the_group() {
    let (b, log) = broker(CLASSIC.to_vec(), |req, _| {
        // The join stays in SyncGroup for a second.
        (req.header.request_api_key == SYNC).then(|| match echo_sync(req, None) {
            TcpReply::Frame(f) => TcpReply::Delayed(Duration::from_millis(1000), f),
            other => other,
        })
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        while log.count(SYNC) == 0 {
            c.poll(Duration::from_millis(50)).await.unwrap();
        }
    })
    .await;
    assert!(r.is_ok(), "no SyncGroup");
    c.close().await.unwrap();
    let leaves = log.all::<LeaveGroupRequest>(LEAVE);
    assert_eq!(leaves.len(), 1, "the coordinator knows the member (it answered JoinGroup): it must leave");
    assert_eq!(leaves[0].members[0].member_id.as_str(), "m-1");
}

#[tokio::test]
async fn unsubscribe_after_the_membership_was_lost_reports_the_partitions_lost() {
    let code = Arc::new(AtomicI16::new(0));
    let (_b, log, c) = joined_with_commit_code(code.clone()).await;
    let rec = Recorder::default();
    c.set_rebalance_listener(rec.clone()).unwrap();
    code.store(ErrorCode::UnknownMemberId.code(), Ordering::SeqCst);
    assert!(matches!(c.commit(offsets()).await.unwrap_err(), Error::CommitFailed(_)));
    c.unsubscribe().await.unwrap();
    assert_eq!(rec.events(), ["lost t-0,t-1"], "other members may own them already: not an orderly revocation");
    assert!(c.assignment().is_empty());
    assert_eq!(log.count(LEAVE), 0, "the coordinator no longer knows this member");
}

/// A KIP-848 consumer (static when `instance`) whose heartbeats after the first assignment
/// are answered `code` once.
async fn kip848_answered_once(code: ErrorCode, instance: bool) -> (TcpBroker, Arc<Log>, Consumer, Recorder) {
    let fence = Arc::new(AtomicBool::new(false));
    let f = fence.clone();
    let (b, log) = broker(with_cgh(), move |req, _| {
        (req.header.request_api_key == CGH && f.swap(false, Ordering::SeqCst))
            .then(|| frame::<ConsumerGroupHeartbeatRequest>(req, &cgh_answer(req, Some(code))))
    })
    .await;
    let c = consumer(&b, |c| {
        let c = c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![]);
        if instance { c.group_instance_id("i-1") } else { c }
    })
    .await;
    let rec = Recorder::default();
    c.set_rebalance_listener(rec.clone()).unwrap();
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "assigned", assigned_t).await;
    fence.store(true, Ordering::SeqCst);
    (b, log, c, rec)
}

#[tokio::test]
async fn kip848_unreleased_instance_id_is_a_lasting_error_and_heartbeats_stop() {
    let (_b, log, c, _rec) = kip848_answered_once(ErrorCode::UnreleasedInstanceId, true).await;
    let e = poll_error(&c).await;
    assert_eq!(e.code(), Some(ErrorCode::UnreleasedInstanceId), "{e:?}");
    assert_eq!(c.poll(Duration::from_millis(10)).await.unwrap_err().code(), Some(ErrorCode::UnreleasedInstanceId));
    let beats = log.count(CGH);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(log.count(CGH) <= beats + 1, "heartbeats go on after a fatal error");
}

#[tokio::test]
async fn kip848_close_of_a_static_member_leaves_with_epoch_minus_2() {
    let (b, log) = broker(with_cgh(), |_, _| None).await;
    let c = consumer(&b, |c| c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![]).group_instance_id("i-1")).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "assigned", assigned_t).await;
    c.close().await.unwrap();
    let last = log.all::<ConsumerGroupHeartbeatRequest>(CGH).pop().unwrap();
    assert_eq!(last.member_epoch, -2);
    assert_eq!(last.instance_id.as_ref().map(|i| i.as_str()), Some("i-1"));
}

#[tokio::test]
async fn join_group_errors_that_are_not_retriable_come_back_from_poll_promptly() {
    for code in [ErrorCode::GroupMaxSizeReached, ErrorCode::InconsistentGroupProtocol] {
        let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
            (req.header.request_api_key == JOIN).then(|| {
                frame::<JoinGroupRequest>(req, &JoinGroupResponse::default().with_error_code(code.code()).with_generation_id(-1))
            })
        })
        .await;
        let c = consumer(&b, |c| c).await;
        c.subscribe(["t"]).await.unwrap();
        let start = std::time::Instant::now();
        let e = c.poll(Duration::from_secs(3)).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1), "{code:?}: {:?}", start.elapsed());
        assert_eq!(e.code(), Some(code), "{e}");
        assert_eq!(log.count(JOIN), 1, "{code:?} is not retried within the poll");
        assert!(c.assignment().is_empty());
    }
}

#[tokio::test]
async fn not_coordinator_on_heartbeat_finds_the_coordinator_again_without_a_rebalance() {
    let once = Arc::new(AtomicBool::new(false));
    let o = once.clone();
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        (req.header.request_api_key == HEARTBEAT && o.swap(false, Ordering::SeqCst)).then(|| {
            frame::<HeartbeatRequest>(req, &HeartbeatResponse::default().with_error_code(ErrorCode::NotCoordinator.code()))
        })
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    let (finds, joins) = (log.count(FIND), log.count(JOIN));
    once.store(true, Ordering::SeqCst);
    wait_log(&log, "a heartbeat after a new FindCoordinator", |l| {
        !once.load(Ordering::SeqCst) && l.count(FIND) > finds && l.count(HEARTBEAT) > 0
    })
    .await;
    let beats = log.count(HEARTBEAT);
    wait_log(&log, "heartbeats go on", |l| l.count(HEARTBEAT) > beats + 1).await;
    for _ in 0..3 {
        c.poll(Duration::from_millis(50)).await.unwrap();
    }
    assert_eq!(log.count(JOIN), joins, "no rebalance");
    assert!(assigned_t(&c));
}

#[tokio::test]
async fn close_succeeds_when_the_coordinator_no_longer_knows_the_member() {
    let (b, log) = broker(CLASSIC.to_vec(), |req, _| {
        (req.header.request_api_key == LEAVE).then(|| {
            let r = req.decode::<LeaveGroupRequest>();
            let members = r
                .members
                .iter()
                .map(|m| {
                    kafka_protocol::messages::leave_group_response::MemberResponse::default()
                        .with_member_id(m.member_id.clone())
                        .with_error_code(ErrorCode::UnknownMemberId.code())
                })
                .collect();
            frame::<LeaveGroupRequest>(req, &LeaveGroupResponse::default().with_members(members))
        })
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    c.close().await.expect("the member is out of the group either way");
    assert_eq!(log.count(LEAVE), 1);
}

/// Calls back into the consumer from `on_partitions_assigned`.
struct Reentrant(Arc<Mutex<Vec<String>>>);

impl ConsumerRebalanceListener for Reentrant {
    fn on_partitions_assigned<'a>(&'a self, c: &'a Consumer, _ps: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let r = [
                c.poll(Duration::from_millis(10)).await.map(|_| ()),
                c.subscribe(["t"]).await,
                c.unsubscribe().await,
                c.close().await,
                c.commit(None).await,
                // Sync: it waits for nothing, so it works from a callback (next poll on).
                c.set_rebalance_listener(super::NoopListener),
            ];
            *self.0.lock().unwrap() = r.iter().map(|r| format!("{r:?}")).collect();
        })
    }
}

#[tokio::test]
async fn consumer_calls_from_a_callback_that_would_wait_for_the_poll_fail_instead_of_hanging() {
    let (b, _log) = broker(CLASSIC.to_vec(), |_, _| None).await;
    let c = consumer(&b, |c| c).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    c.set_rebalance_listener(Reentrant(seen.clone())).unwrap();
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", |_| !seen.lock().unwrap().is_empty()).await;
    let r = seen.lock().unwrap().clone();
    for call in &r[..4] {
        assert!(call.contains("rebalance listener callback"), "{r:?}");
    }
    assert_eq!(r[4], "Ok(())", "commit works from a callback (and the consumer is not closed)");
    assert_eq!(r[5], "Ok(())", "set_rebalance_listener works from a callback");
    assert!(assigned_t(&c));
}

#[tokio::test]
async fn kip848_close_while_the_join_heartbeat_is_unanswered_still_leaves() {
    let (b, log) = broker(with_cgh(), |req, _| {
        (req.header.request_api_key == CGH && req.decode::<ConsumerGroupHeartbeatRequest>().member_epoch == 0).then(|| {
            let bytes = encode_response::<ConsumerGroupHeartbeatRequest>(
                req.header.correlation_id,
                req.header.request_api_version,
                &cgh_answer(req, None),
            );
            TcpReply::Delayed(Duration::from_millis(1000), bytes)
        })
    })
    .await;
    let c = consumer(&b, |c| c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![])).await;
    c.subscribe(["t"]).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        while log.count(CGH) == 0 {
            c.poll(Duration::from_millis(50)).await.unwrap();
        }
    })
    .await;
    assert!(r.is_ok(), "no join heartbeat");
    c.close().await.unwrap();
    let all = log.all::<ConsumerGroupHeartbeatRequest>(CGH);
    assert_eq!(all.last().unwrap().member_epoch, -1, "the coordinator may have the member already: leave");
    assert_eq!(all.last().unwrap().member_id, all[0].member_id);
}

#[tokio::test]
async fn polls_dropped_mid_join_keep_the_one_join_going() {
    let (b, log) = broker(CLASSIC.to_vec(), |req, _| {
        (req.header.request_api_key == SYNC).then(|| match echo_sync(req, None) {
            TcpReply::Frame(f) => TcpReply::Delayed(Duration::from_millis(500), f),
            other => other,
        })
    })
    .await;
    let c = consumer(&b, |c| c).await;
    let rec = Recorder::default();
    c.set_rebalance_listener(rec.clone()).unwrap();
    c.subscribe(["t"]).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        let mut i = 0u64;
        while !assigned_t(&c) {
            i += 1;
            // Alternately dropped by the caller and timing out on their own.
            let _ = tokio::time::timeout(Duration::from_millis(10 + 7 * (i % 5)), c.poll(Duration::from_millis(30))).await;
        }
    })
    .await;
    assert!(r.is_ok(), "never assigned");
    assert_eq!((log.count(JOIN), log.count(SYNC)), (2, 1), "one join (after MEMBER_ID_REQUIRED), not one per poll");
    assert_eq!(rec.events(), ["assigned t-0,t-1"]);
}

#[tokio::test]
async fn a_background_auto_commit_finding_the_membership_gone_rejoins() {
    let (_b, log, c, rec, arm) = auto_committer(ErrorCode::UnknownMemberId, Duration::from_millis(100)).await;
    let joins = log.count(JOIN);
    arm.store(true, Ordering::SeqCst);
    poll_until(&c, "rejoined", |c| log.count(JOIN) > joins && assigned_t(c) && rec.events().len() >= 3).await;
    assert_eq!(log.all::<JoinGroupRequest>(JOIN)[joins].member_id.as_str(), "", "the member id was dropped");
    assert_eq!(rec.events(), ["assigned t-0,t-1", "lost t-0,t-1", "assigned t-0,t-1"]);
}

#[tokio::test]
async fn sync_group_rebalance_in_progress_then_unknown_member_id_rejoin_within_the_join() {
    let n = Arc::new(AtomicUsize::new(0));
    let (b, log) = broker(CLASSIC.to_vec(), move |req, _| {
        if req.header.request_api_key != SYNC {
            return None;
        }
        let code = match n.fetch_add(1, Ordering::SeqCst) {
            0 => ErrorCode::RebalanceInProgress,
            1 => ErrorCode::UnknownMemberId,
            _ => return None,
        };
        Some(frame::<SyncGroupRequest>(req, &SyncGroupResponse::default().with_error_code(code.code())))
    })
    .await;
    let c = consumer(&b, |c| c).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "joined", assigned_t).await;
    let ids: Vec<String> = log.all::<JoinGroupRequest>(JOIN).iter().map(|j| j.member_id.to_string()).collect();
    assert_eq!(ids, ["", "m-1", "m-1", "", "m-1"], "rejoin keeps the id after REBALANCE_IN_PROGRESS, drops it after UNKNOWN_MEMBER_ID");
    assert_eq!(log.count(SYNC), 3);
}

#[tokio::test]
async fn kip848_a_commit_answered_stale_member_epoch_is_retried_with_the_new_epoch() {
    let bumped = Arc::new(AtomicBool::new(false));
    let bu = bumped.clone();
    let (b, log) = broker(with_cgh(), move |req, _| match req.header.request_api_key {
        COMMIT if req.decode::<OffsetCommitRequest>().generation_id_or_member_epoch == 1 => {
            // The epoch moved on while the commit was in flight.
            bu.store(true, Ordering::SeqCst);
            Some(commit_answer(req, ErrorCode::StaleMemberEpoch.code()))
        }
        CGH if bu.load(Ordering::SeqCst) && req.decode::<ConsumerGroupHeartbeatRequest>().member_epoch > 0 => {
            Some(frame::<ConsumerGroupHeartbeatRequest>(req, &cgh_answer(req, None).with_member_epoch(2)))
        }
        _ => None,
    })
    .await;
    let c = consumer(&b, |c| c.group_protocol(GroupProtocol::Consumer).partition_assignment_strategy(vec![])).await;
    c.subscribe(["t"]).await.unwrap();
    poll_until(&c, "assigned", assigned_t).await;
    assert_eq!(c.group_metadata().unwrap().generation_id, 1);
    c.commit(offsets()).await.expect("retried with epoch 2");
    let epochs: Vec<i32> = log.all::<OffsetCommitRequest>(COMMIT).iter().map(|r| r.generation_id_or_member_epoch).collect();
    assert_eq!(epochs, [1, 2]);
}
