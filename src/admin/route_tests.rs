//! The admin routing (route.rs) against a scripted TCP broker: batched coordinator lookup
//! with per-key retries and errors, per-partition retries at the leader, and the retry
//! loop around a single request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::find_coordinator_response::Coordinator as RespCoordinator;
use kafka_protocol::messages::{ApiVersionsRequest, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest};
use kafka_protocol::protocol::StrBytes;

use super::route::{GROUP_KEY, Target};
use super::{AdminClient, AdminConfig};
use crate::consumer::TopicPartition;
use crate::error::{Error, ErrorCode};
use crate::network::testing::{api_versions, encode_response, single_node_metadata, Received, TcpBroker, TcpReply};

/// ApiVersions, Metadata, FindCoordinator (v4+: batched keys).
const RANGES: &[(i16, i16, i16)] = &[(18, 0, 4), (3, 0, 12), (10, 0, 6)];

/// The keys of each FindCoordinator request, in order.
type Lookups = Arc<Mutex<Vec<Vec<String>>>>;

/// A broker that leads topic `t` (2 partitions) and coordinates every group, except that
/// `g-load` is still loading on the first lookup and `g-denied` is not authorized.
async fn broker(lookups: Lookups) -> TcpBroker {
    TcpBroker::start(move |req: &Received, host, port| {
        let (corr, v) = (req.header.correlation_id, req.header.request_api_version);
        match req.header.request_api_key {
            18 => TcpReply::Frame(encode_response::<ApiVersionsRequest>(corr, v, &api_versions(RANGES))),
            3 => TcpReply::Frame(encode_response::<MetadataRequest>(corr, v, &single_node_metadata(host, port, "t", 2))),
            10 => {
                let r = req.decode::<FindCoordinatorRequest>();
                let keys: Vec<String> = r.coordinator_keys.iter().map(|k| k.to_string()).collect();
                let first = {
                    let mut l = lookups.lock().unwrap();
                    l.push(keys.clone());
                    l.len() == 1
                };
                let coordinators = keys
                    .iter()
                    .map(|k| {
                        let code = match k.as_str() {
                            "g-load" if first => ErrorCode::CoordinatorLoadInProgress.code(),
                            "g-denied" => ErrorCode::GroupAuthorizationFailed.code(),
                            _ => 0,
                        };
                        RespCoordinator::default()
                            .with_key(StrBytes::from_string(k.clone()))
                            .with_error_code(code)
                            .with_node_id(BrokerId(if code == 0 { 0 } else { -1 }))
                            .with_host(StrBytes::from_string(host.to_owned()))
                            .with_port(if code == 0 { port } else { -1 })
                    })
                    .collect();
                let resp = FindCoordinatorResponse::default().with_coordinators(coordinators);
                TcpReply::Frame(encode_response::<FindCoordinatorRequest>(corr, v, &resp))
            }
            _ => TcpReply::Close,
        }
    })
    .await
}

async fn admin(b: &TcpBroker) -> AdminClient {
    let mut config = AdminConfig::new(b.addr()).default_api_timeout(Duration::from_secs(5));
    config.client.retry_backoff = Duration::from_millis(10);
    AdminClient::new(config).await.expect("admin client")
}

#[tokio::test]
async fn coordinators_of_many_groups_are_found_in_one_request_and_only_the_loading_one_is_asked_again() {
    let lookups: Lookups = Arc::default();
    let b = broker(lookups.clone()).await;
    let admin = admin(&b).await;
    let keys: Vec<String> = ["g1", "g-load", "g-denied"].iter().map(|s| s.to_string()).collect();
    let found = admin.find_coordinators(GROUP_KEY, &keys, Duration::from_secs(5)).await;
    assert_eq!(found.len(), 3);
    assert_eq!(found["g1"].as_ref().ok(), Some(&0));
    assert_eq!(found["g-load"].as_ref().ok(), Some(&0), "COORDINATOR_LOAD_IN_PROGRESS is waited out");
    let denied = found["g-denied"].as_ref().expect_err("not authorized");
    assert_eq!(denied.code(), Some(ErrorCode::GroupAuthorizationFailed));
    assert!(denied.to_string().contains("g-denied"), "the error names the group: {denied}");
    let l = lookups.lock().unwrap().clone();
    assert_eq!(l, vec![keys.clone(), vec!["g-load".to_string()]], "one batched lookup, then only the retriable key");
}

#[tokio::test]
async fn per_leader_retries_only_the_partition_whose_leader_moved() {
    let b = broker(Arc::default()).await;
    let admin = admin(&b).await;
    let calls: Mutex<HashMap<TopicPartition, u32>> = Mutex::new(HashMap::new());
    let asked = vec![
        TopicPartition::new("t", 0),
        TopicPartition::new("t", 1),
        TopicPartition::new("t", 7),
        TopicPartition::new("nope", 0),
    ];
    let results = admin
        .per_leader("Test", &asked, Duration::from_secs(5), |_conn, tps| {
            let calls = &calls;
            async move {
                let mut c = calls.lock().unwrap();
                Ok(tps
                    .into_iter()
                    .map(|tp| {
                        let n = c.entry(tp.clone()).or_insert(0);
                        *n += 1;
                        let r = if tp.partition == 1 && *n == 1 {
                            Err(Error::broker(ErrorCode::NotLeaderOrFollower, "Test", None, Some(tp.topic.clone()), Some(1)))
                        } else {
                            Ok(tp.partition * 10)
                        };
                        (tp, r)
                    })
                    .collect())
            }
        })
        .await;
    assert_eq!(results.len(), 4, "one result per partition asked");
    assert_eq!(results[&asked[0]].as_ref().ok(), Some(&0));
    assert_eq!(results[&asked[1]].as_ref().ok(), Some(&10), "NOT_LEADER_OR_FOLLOWER is retried");
    for tp in &asked[2..] {
        let e = results[tp].as_ref().expect_err("no such partition");
        assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{tp:?}: {e}");
    }
    let c = calls.lock().unwrap();
    assert_eq!(c.get(&asked[0]), Some(&1), "a partition that succeeded is not sent again");
    assert_eq!(c.get(&asked[1]), Some(&2));
    assert_eq!(c.get(&asked[2]), None, "a partition the topic lacks is never sent");
    assert_eq!(c.get(&asked[3]), None, "a topic the cluster lacks is never sent");
}

#[tokio::test]
async fn send_to_retries_a_moved_controller_and_returns_a_final_error_at_once() {
    let b = broker(Arc::default()).await;
    let admin = admin(&b).await;
    let attempts = AtomicU32::new(0);
    let r = admin
        .send_to::<ApiVersionsRequest, _, _>(
            "Test",
            Target::Controller,
            Duration::from_secs(5),
            |_v| Ok(ApiVersionsRequest::default()),
            |_resp| {
                if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Error::broker(ErrorCode::NotController, "Test", None, None, None))
                } else {
                    Ok(())
                }
            },
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "NOT_CONTROLLER is retried once the controller is found again");

    let attempts = AtomicU32::new(0);
    let r = admin
        .send_to::<ApiVersionsRequest, _, _>(
            "Test",
            Target::Any,
            Duration::from_secs(5),
            |_v| Ok(ApiVersionsRequest::default()),
            |_resp| {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(Error::broker(ErrorCode::InvalidRequest, "Test", Some("bad".into()), None, None))
            },
        )
        .await;
    assert_eq!(r.expect_err("final").code(), Some(ErrorCode::InvalidRequest));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "a non-retriable error is returned at once");
}

/// An unclean election goes to the controller with election type 1 and the partitions
/// asked, and each partition keeps its own answer (the effect — an out-of-sync replica
/// becoming leader — needs two unavailable nodes, which a 3-node combined quorum cannot
/// lose and still elect; see the issue note).
#[tokio::test]
async fn an_unclean_election_is_sent_as_such_and_answered_per_partition() {
    use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
    use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

    let seen: Arc<Mutex<Vec<(i8, Vec<(String, Vec<i32>)>)>>> = Arc::default();
    let log = seen.clone();
    let b = TcpBroker::start(move |req: &Received, host, port| {
        let (corr, v) = (req.header.correlation_id, req.header.request_api_version);
        match req.header.request_api_key {
            18 => TcpReply::Frame(encode_response::<ApiVersionsRequest>(corr, v, &api_versions(&[(18, 0, 4), (3, 0, 12), (43, 0, 2)]))),
            3 => TcpReply::Frame(encode_response::<MetadataRequest>(corr, v, &single_node_metadata(host, port, "t", 2))),
            43 => {
                let r = req.decode::<ElectLeadersRequest>();
                let asked: Vec<(String, Vec<i32>)> = r
                    .topic_partitions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.topic.0.to_string(), t.partitions))
                    .collect();
                log.lock().unwrap().push((r.election_type, asked));
                let resp = ElectLeadersResponse::default().with_replica_election_results(vec![ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_result(vec![
                        PartitionResult::default().with_partition_id(0),
                        PartitionResult::default()
                            .with_partition_id(1)
                            .with_error_code(ErrorCode::EligibleLeadersNotAvailable.code())
                            .with_error_message(Some(StrBytes::from_static_str("no live replica"))),
                    ])]);
                TcpReply::Frame(encode_response::<ElectLeadersRequest>(corr, v, &resp))
            }
            _ => TcpReply::Close,
        }
    })
    .await;
    let admin = admin(&b).await;
    let asked = [TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
    let r = admin.elect_leaders(super::ElectionType::Unclean, Some(&asked), Default::default()).await.unwrap();
    assert!(r[&asked[0]].is_ok(), "{r:?}");
    let e = r[&asked[1]].as_ref().expect_err("no eligible leader");
    assert_eq!(e.code(), Some(ErrorCode::EligibleLeadersNotAvailable));
    assert!(e.to_string().contains("no live replica"), "{e}");
    assert_eq!(seen.lock().unwrap().clone(), vec![(1, vec![("t".to_string(), vec![0, 1])])], "type 1 (unclean), the partitions asked");
}
