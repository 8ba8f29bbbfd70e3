//! The transactional producer's state machine against a scripted TCP broker (transaction
//! protocol v1): coordinator retries (CONCURRENT_TRANSACTIONS, NOT_COORDINATOR), fencing,
//! calls in the wrong state, and a commit whose outcome is unknown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::find_coordinator_response::Coordinator as RespCoordinator;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiVersionsRequest, BrokerId, EndTxnRequest, EndTxnResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult};
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, TxnOffsetCommitRequest};
use kafka_protocol::protocol::StrBytes;

use crate::error::{Error, ErrorCode};
use crate::network::testing::{api_versions, encode_response, txn_offset_commit_answer, Received, TcpBroker, TcpReply};
use crate::producer::{Producer, ProducerConfig, ProducerRecord};
use crate::record::layout;

/// ApiVersions, Metadata, Produce (v11: protocol v1), FindCoordinator, InitProducerId,
/// AddPartitionsToTxn, AddOffsetsToTxn, EndTxn (v4), TxnOffsetCommit — no
/// `transaction.version` feature, so transaction protocol v1.
const RANGES: &[(i16, i16, i16)] =
    &[(18, 0, 4), (3, 0, 12), (0, 3, 11), (10, 0, 4), (22, 0, 5), (24, 0, 3), (25, 0, 3), (26, 0, 4), (28, 0, 3)];

/// The same with transaction protocol v2 (Kafka 4.x): Produce v12, EndTxn v5,
/// TxnOffsetCommit v5 and the finalized feature `transaction.version` = 2.
const RANGES_V2: &[(i16, i16, i16)] =
    &[(18, 0, 4), (3, 0, 12), (0, 3, 12), (10, 0, 6), (22, 0, 5), (24, 0, 5), (25, 0, 4), (26, 0, 5), (28, 0, 5)];

const PID: i64 = 4000;

/// What the scripted coordinator saw: (api key, producer epoch, extra) per request.
#[derive(Default)]
struct Script {
    log: Vec<(i16, i16, String)>,
    /// Error codes to answer InitProducerId with, in order, before succeeding.
    init_errors: Vec<i16>,
    /// Error codes to answer EndTxn with, in order, before succeeding.
    end_errors: Vec<i16>,
    /// Delay the first EndTxn answer by this much (the commit's outcome becomes unknown).
    end_delay: Option<Duration>,
    epoch: i16,
    /// Advertise transaction protocol v2.
    v2: bool,
    /// Partition error codes to answer AddPartitionsToTxn with, in order, before succeeding.
    add_errors: Vec<i16>,
    /// Partition error codes to answer Produce with, in order, before succeeding.
    produce_errors: Vec<i16>,
    /// Delay the first Produce answer by this much (its batch stays in flight meanwhile).
    produce_delay: Option<Duration>,
    /// Error codes to answer AddOffsetsToTxn with, in order, before succeeding.
    add_offsets_errors: Vec<i16>,
    /// Partition error codes to answer TxnOffsetCommit with, in order, before succeeding.
    txn_offset_errors: Vec<i16>,
    /// The nodes a transaction-coordinator lookup names, in order (the last one stays);
    /// node 0 when empty.
    coordinators: Vec<i32>,
    /// The port of a second broker, node 1, listed in the metadata unless `node1_gone`.
    node1_port: Option<i32>,
    /// The port of node 0 (set with `node1_port`).
    node0_port: i32,
    /// Node 1 died: the metadata no longer lists it and it closes every connection.
    node1_gone: bool,
    /// The api keys of the requests node 1 got (and closed the connection on) after it died.
    dead_hits: Vec<i16>,
    /// (api key, node) of every coordinator request (InitProducerId, AddPartitionsToTxn,
    /// AddOffsetsToTxn, EndTxn) that a live node answered.
    served: Vec<(i16, i32)>,
}

fn log(s: &Arc<Mutex<Script>>) -> Vec<(i16, i16, String)> {
    s.lock().unwrap().log.clone()
}

async fn broker(script: Arc<Mutex<Script>>) -> TcpBroker {
    TcpBroker::start(move |req: &Received, host, port| {
        let (corr, v) = (req.header.correlation_id, req.header.request_api_version);
        let frame = |b| TcpReply::Frame(b);
        let mut s = script.lock().unwrap();
        let node = if s.node1_port == Some(port) { 1 } else { 0 };
        if node == 1 && s.node1_gone {
            s.dead_hits.push(req.header.request_api_key);
            return TcpReply::Close;
        }
        if matches!(req.header.request_api_key, 22 | 24 | 25 | 26) {
            s.served.push((req.header.request_api_key, node));
        }
        match req.header.request_api_key {
            18 => {
                let resp = if s.v2 {
                    api_versions(RANGES_V2).with_finalized_features_epoch(1).with_finalized_features(vec![
                        kafka_protocol::messages::api_versions_response::FinalizedFeatureKey::default()
                            .with_name(StrBytes::from_static_str("transaction.version"))
                            .with_max_version_level(2)
                            .with_min_version_level(2),
                    ])
                } else {
                    api_versions(RANGES)
                };
                frame(encode_response::<ApiVersionsRequest>(corr, v, &resp))
            }
            3 => {
                let node0 = if s.node1_port.is_some() { s.node0_port } else { port };
                let mut brokers = vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(0))
                    .with_host(StrBytes::from_string(host.to_owned()))
                    .with_port(node0)];
                if let (Some(p1), false) = (s.node1_port, s.node1_gone) {
                    brokers.push(
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(1))
                            .with_host(StrBytes::from_string(host.to_owned()))
                            .with_port(p1),
                    );
                }
                let resp = MetadataResponse::default()
                    .with_brokers(brokers)
                    .with_controller_id(BrokerId(0))
                    .with_topics(vec![MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                        .with_partitions(vec![MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(BrokerId(0))
                            .with_leader_epoch(0)
                            .with_replica_nodes(vec![BrokerId(0)])
                            .with_isr_nodes(vec![BrokerId(0)])])]);
                frame(encode_response::<MetadataRequest>(corr, v, &resp))
            }
            10 => {
                let r = req.decode::<FindCoordinatorRequest>();
                s.log.push((10, -1, format!("key_type={}", r.key_type)));
                let id = match s.coordinators.len() {
                    _ if r.key_type != 1 => 0,
                    0 => 0,
                    1 => s.coordinators[0],
                    _ => s.coordinators.remove(0),
                };
                let at = match (id, s.node1_port) {
                    (1, Some(p1)) => p1,
                    (_, Some(_)) => s.node0_port,
                    _ => port,
                };
                let c = RespCoordinator::default()
                    .with_key(r.coordinator_keys.first().cloned().unwrap_or_default())
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_string(host.to_owned()))
                    .with_port(at);
                let resp = if v >= 4 {
                    FindCoordinatorResponse::default().with_coordinators(vec![c])
                } else {
                    FindCoordinatorResponse::default()
                        .with_node_id(BrokerId(id))
                        .with_host(StrBytes::from_string(host.to_owned()))
                        .with_port(at)
                };
                frame(encode_response::<FindCoordinatorRequest>(corr, v, &resp))
            }
            22 => {
                let r = req.decode::<InitProducerIdRequest>();
                s.log.push((22, r.producer_epoch, format!("pid={} txn={:?}", r.producer_id.0, r.transactional_id.map(|t| t.0.to_string()))));
                let resp = if !s.init_errors.is_empty() {
                    let code = s.init_errors.remove(0);
                    InitProducerIdResponse::default().with_error_code(code).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
                } else {
                    s.epoch += 1;
                    InitProducerIdResponse::default().with_producer_id(ProducerId(PID)).with_producer_epoch(s.epoch)
                };
                frame(encode_response::<InitProducerIdRequest>(corr, v, &resp))
            }
            24 => {
                let r = req.decode::<AddPartitionsToTxnRequest>();
                s.log.push((24, r.v3_and_below_producer_epoch, String::new()));
                let code = if s.add_errors.is_empty() { 0 } else { s.add_errors.remove(0) };
                let results = r
                    .v3_and_below_topics
                    .iter()
                    .map(|t| {
                        AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(
                            t.partitions
                                .iter()
                                .map(|p| AddPartitionsToTxnPartitionResult::default().with_partition_index(*p).with_partition_error_code(code))
                                .collect(),
                        )
                    })
                    .collect();
                let resp = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
                frame(encode_response::<AddPartitionsToTxnRequest>(corr, v, &resp))
            }
            0 => {
                let r = req.decode::<ProduceRequest>();
                let records = r.topic_data[0].partition_data[0].records.clone().unwrap_or_default();
                let i16_at = |o: usize| i16::from_be_bytes([records[o], records[o + 1]]);
                let seq = i32::from_be_bytes(records[layout::BASE_SEQUENCE..layout::BASE_SEQUENCE + 4].try_into().unwrap());
                let transactional = i16_at(layout::ATTRIBUTES) & 0x10 != 0;
                s.log.push((0, i16_at(layout::PRODUCER_EPOCH), format!(
                    "v{v} seq={seq} transactional={transactional} id={:?}",
                    r.transactional_id.map(|t| t.0.to_string())
                )));
                let code = if s.produce_errors.is_empty() { 0 } else { s.produce_errors.remove(0) };
                let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(0)
                        .with_base_offset(0)
                        .with_error_code(code)])]);
                let bytes = encode_response::<ProduceRequest>(corr, v, &resp);
                match s.produce_delay.take() {
                    Some(d) => TcpReply::Delayed(d, bytes),
                    None => frame(bytes),
                }
            }
            26 => {
                let r = req.decode::<EndTxnRequest>();
                s.log.push((26, r.producer_epoch, format!("committed={}", r.committed)));
                let code = if s.end_errors.is_empty() { 0 } else { s.end_errors.remove(0) };
                let mut resp = EndTxnResponse::default().with_error_code(code);
                if v >= 5 {
                    // v2: every EndTxn bumps the epoch and returns it.
                    if code == 0 {
                        s.epoch += 1;
                    }
                    resp = resp.with_producer_id(ProducerId(PID)).with_producer_epoch(s.epoch);
                }
                let bytes = encode_response::<EndTxnRequest>(corr, v, &resp);
                match s.end_delay.take() {
                    Some(d) => TcpReply::Delayed(d, bytes),
                    None => frame(bytes),
                }
            }
            25 => {
                let r = req.decode::<AddOffsetsToTxnRequest>();
                s.log.push((25, r.producer_epoch, format!("group={}", r.group_id.0)));
                let code = if s.add_offsets_errors.is_empty() { 0 } else { s.add_offsets_errors.remove(0) };
                frame(encode_response::<AddOffsetsToTxnRequest>(corr, v, &AddOffsetsToTxnResponse::default().with_error_code(code)))
            }
            28 => {
                let r = req.decode::<TxnOffsetCommitRequest>();
                s.log.push((28, r.producer_epoch, format!("group={} generation={}", r.group_id.0, r.generation_id)));
                let code = if s.txn_offset_errors.is_empty() { 0 } else { s.txn_offset_errors.remove(0) };
                frame(encode_response::<TxnOffsetCommitRequest>(corr, v, &txn_offset_commit_answer(&r, code)))
            }
            _ => TcpReply::Close,
        }
    })
    .await
}

async fn producer(b: &TcpBroker) -> Producer {
    let mut cfg = ProducerConfig::new(b.addr()).transactional_id("tid").linger(Duration::from_millis(1));
    cfg.client.retry_backoff = Duration::from_millis(10);
    Producer::new(cfg).await.unwrap()
}

const T: Duration = Duration::from_secs(5);

/// One transaction with a record, up to (not including) its end.
async fn open_transaction_with_a_record(p: &Producer) {
    p.begin_transaction().unwrap();
    let f = p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap();
    f.await.unwrap();
}

#[tokio::test]
async fn concurrent_transactions_is_retried_and_not_coordinator_finds_the_coordinator_again() {
    let script = Arc::new(Mutex::new(Script {
        init_errors: vec![ErrorCode::ConcurrentTransactions.code(), ErrorCode::ConcurrentTransactions.code(), ErrorCode::NotCoordinator.code()],
        ..Default::default()
    }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    let l = log(&script);
    let finds = l.iter().filter(|(k, _, _)| *k == 10).count();
    let inits = l.iter().filter(|(k, _, _)| *k == 22).count();
    assert_eq!(inits, 4, "two CONCURRENT_TRANSACTIONS and one NOT_COORDINATOR retried: {l:?}");
    assert_eq!(finds, 2, "NOT_COORDINATOR looks the coordinator up again (and only it): {l:?}");
    assert!(l.iter().filter(|(k, _, _)| *k == 10).all(|(_, _, x)| x == "key_type=1"), "transaction coordinator lookups: {l:?}");
    assert!(l.iter().any(|(k, _, x)| *k == 22 && x.contains("Some(\"tid\")")), "{l:?}");
    assert_eq!(p.txn_protocol(), Some(1));
    // v1: the partition is added before its first batch is produced.
    open_transaction_with_a_record(&p).await;
    p.commit_transaction(T).await.unwrap();
    let l = log(&script);
    let order: Vec<i16> = l.iter().map(|(k, _, _)| *k).filter(|k| matches!(k, 24 | 0 | 26)).collect();
    assert_eq!(order, vec![24, 0, 26], "AddPartitionsToTxn, Produce, EndTxn: {l:?}");
    let produce = l.iter().find(|(k, _, _)| *k == 0).unwrap();
    assert_eq!(produce, &(0, 1, "v11 seq=0 transactional=true id=Some(\"tid\")".to_owned()), "{l:?}");
}

#[tokio::test]
async fn producer_fenced_from_the_coordinator_is_fatal() {
    let script = Arc::new(Mutex::new(Script { end_errors: vec![ErrorCode::ProducerFenced.code()], ..Default::default() }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    open_transaction_with_a_record(&p).await;
    let e = p.commit_transaction(T).await.unwrap_err();
    assert!(e.is_fatal() && !e.is_abortable(), "{e}");
    assert_eq!(e.code(), Some(ErrorCode::ProducerFenced));
    assert!(p.begin_transaction().unwrap_err().is_fatal());
    assert!(p.abort_transaction(T).await.unwrap_err().is_fatal());
    assert!(p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap_err().is_fatal());
}

#[tokio::test]
async fn invalid_producer_epoch_from_the_coordinator_is_reported_as_fenced() {
    let script = Arc::new(Mutex::new(Script { end_errors: vec![ErrorCode::InvalidProducerEpoch.code()], ..Default::default() }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    open_transaction_with_a_record(&p).await;
    let e = p.abort_transaction(T).await.unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert_eq!(e.code(), Some(ErrorCode::ProducerFenced));
}

#[tokio::test]
async fn calls_in_the_wrong_state_are_invalid_transaction_state() {
    let script = Arc::new(Mutex::new(Script::default()));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    let is_state = |e: Error| assert!(matches!(e, Error::InvalidTransactionState(_)), "{e}");
    is_state(p.begin_transaction().unwrap_err());
    is_state(p.commit_transaction(T).await.unwrap_err());
    is_state(p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap_err());
    p.init_transactions(T).await.unwrap();
    is_state(p.init_transactions(T).await.unwrap_err());
    is_state(p.abort_transaction(T).await.unwrap_err());
    p.begin_transaction().unwrap();
    is_state(p.begin_transaction().unwrap_err());
    // An empty transaction ends without any request to the coordinator.
    p.commit_transaction(T).await.unwrap();
    assert!(!log(&script).iter().any(|(k, _, _)| *k == 26));
}

#[tokio::test]
async fn a_commit_that_timed_out_is_retried_with_the_same_epoch_never_aborted() {
    let script = Arc::new(Mutex::new(Script { end_delay: Some(Duration::from_millis(800)), ..Default::default() }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    open_transaction_with_a_record(&p).await;
    let e = p.commit_transaction(Duration::from_millis(300)).await.unwrap_err();
    assert!(e.is_retriable() && !e.is_abortable(), "{e}");
    // begin is refused until the commit is resolved.
    assert!(matches!(p.begin_transaction().unwrap_err(), Error::InvalidTransactionState(_)));
    p.commit_transaction(T).await.unwrap();
    let ends: Vec<_> = log(&script).into_iter().filter(|(k, _, _)| *k == 26).collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends.iter().all(|(_, epoch, x)| *epoch == 1 && x == "committed=true"), "the same commit, same epoch: {ends:?}");
    p.begin_transaction().unwrap();
}

#[tokio::test]
async fn an_abort_after_a_commit_of_unknown_outcome_re_initialises_instead_of_aborting_that_epoch() {
    let script = Arc::new(Mutex::new(Script { end_delay: Some(Duration::from_millis(800)), ..Default::default() }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    open_transaction_with_a_record(&p).await;
    assert!(p.commit_transaction(Duration::from_millis(300)).await.unwrap_err().is_retriable());
    p.abort_transaction(T).await.unwrap();
    let l = log(&script);
    assert!(!l.iter().any(|(k, _, x)| *k == 26 && x == "committed=false"), "no EndTxn(abort) after an unknown commit: {l:?}");
    let last_init = l.iter().rev().find(|(k, _, _)| *k == 22).unwrap();
    assert_eq!(last_init, &(22, 1, format!("pid={PID} txn=Some(\"tid\")")), "InitProducerId with the current id and epoch (KIP-360): {l:?}");
    // The next transaction runs on the new epoch.
    open_transaction_with_a_record(&p).await;
    p.commit_transaction(T).await.unwrap();
    let l = log(&script);
    assert_eq!(l.iter().rev().find(|(k, _, _)| *k == 26).unwrap(), &(26, 2, "committed=true".to_owned()), "{l:?}");
}

#[tokio::test]
async fn protocol_v2_adds_partitions_implicitly_and_every_end_txn_brings_a_new_epoch() {
    let script = Arc::new(Mutex::new(Script { v2: true, ..Default::default() }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    assert_eq!(p.txn_protocol(), Some(2), "finalized transaction.version 2 chooses protocol v2");
    open_transaction_with_a_record(&p).await;
    open_transaction_with_a_record_again(&p).await;
    p.commit_transaction(T).await.unwrap();
    open_transaction_with_a_record(&p).await;
    p.abort_transaction(T).await.unwrap();
    open_transaction_with_a_record(&p).await;
    p.commit_transaction(T).await.unwrap();
    let l = log(&script);
    assert!(!l.iter().any(|(k, _, _)| *k == 24 || *k == 25), "no AddPartitionsToTxn / AddOffsetsToTxn under v2: {l:?}");
    let produce: Vec<_> = l.iter().filter(|(k, _, _)| *k == 0).map(|(_, e, x)| (*e, x.clone())).collect();
    let id = "id=Some(\"tid\")";
    assert_eq!(
        produce,
        vec![
            (1, format!("v12 seq=0 transactional=true {id}")),
            (1, format!("v12 seq=1 transactional=true {id}")),
            (2, format!("v12 seq=0 transactional=true {id}")),
            (3, format!("v12 seq=0 transactional=true {id}")),
        ],
        "Produce v12 with the transactional id; each EndTxn's epoch is used next and sequences restart: {l:?}"
    );
    let ends: Vec<_> = l.iter().filter(|(k, _, _)| *k == 26).map(|(_, e, x)| (*e, x.clone())).collect();
    assert_eq!(ends, vec![(1, "committed=true".into()), (2, "committed=false".into()), (3, "committed=true".into())]);
}

/// A second record in the open transaction.
async fn open_transaction_with_a_record_again(p: &Producer) {
    let f = p.send(ProducerRecord::new("t").partition(0).value("v2")).await.unwrap();
    f.await.unwrap();
}

#[tokio::test]
async fn a_partition_the_coordinator_refuses_fails_its_records_and_the_transaction_is_abortable() {
    let script = Arc::new(Mutex::new(Script {
        add_errors: vec![ErrorCode::ConcurrentTransactions.code(), ErrorCode::TopicAuthorizationFailed.code()],
        ..Default::default()
    }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    p.begin_transaction().unwrap();
    let f = p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap();
    let e = f.await.unwrap_err();
    assert!(e.is_abortable() && !e.is_fatal(), "the held record fails abortable: {e}");
    assert_eq!(e.code(), Some(ErrorCode::TopicAuthorizationFailed), "{e}");
    let e = p.commit_transaction(T).await.unwrap_err();
    assert!(e.is_abortable(), "{e}");
    let e = p.send(ProducerRecord::new("t").partition(0).value("w")).await.unwrap_err();
    assert!(e.is_abortable(), "{e}");
    // Nothing was produced; the coordinator never knew the transaction: no EndTxn.
    p.abort_transaction(T).await.unwrap();
    let l = log(&script);
    assert_eq!(l.iter().filter(|(k, _, _)| *k == 24).count(), 2, "CONCURRENT_TRANSACTIONS retried once: {l:?}");
    assert!(!l.iter().any(|(k, _, _)| *k == 0 || *k == 26), "no Produce, no EndTxn: {l:?}");
    // The next transaction works.
    open_transaction_with_a_record(&p).await;
    p.commit_transaction(T).await.unwrap();
}

#[tokio::test]
async fn a_batch_refused_for_its_epoch_makes_the_abort_bump_the_epoch_kip_588() {
    let script = Arc::new(Mutex::new(Script { produce_errors: vec![ErrorCode::InvalidProducerEpoch.code()], ..Default::default() }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    p.begin_transaction().unwrap();
    let e = p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap().await.unwrap_err();
    assert!(e.is_abortable() && e.code() == Some(ErrorCode::InvalidProducerEpoch), "{e}");
    assert!(p.commit_transaction(T).await.unwrap_err().is_abortable());
    p.abort_transaction(T).await.unwrap();
    let l = log(&script);
    assert!(!l.iter().any(|(k, _, _)| *k == 26), "the abort is an InitProducerId, not EndTxn: {l:?}");
    assert_eq!(l.iter().rev().find(|(k, _, _)| *k == 22).unwrap(), &(22, 1, format!("pid={PID} txn=Some(\"tid\")")), "{l:?}");
    // The next transaction runs on epoch 2, sequences from 0.
    open_transaction_with_a_record(&p).await;
    p.commit_transaction(T).await.unwrap();
    let l = log(&script);
    let last_produce = l.iter().rev().find(|(k, _, _)| *k == 0).unwrap();
    assert_eq!((last_produce.1, last_produce.2.as_str()), (2, "v11 seq=0 transactional=true id=Some(\"tid\")"), "{l:?}");
}

/// A Produce right after a commit may meet CONCURRENT_TRANSACTIONS while the previous
/// transaction's markers are written (transactions v2, Kafka 4.x): retriable, as Java's
/// ConcurrentTransactionsException; the record is delivered and the transaction commits.
#[tokio::test]
async fn concurrent_transactions_from_a_partition_leader_is_retried_not_abortable() {
    let script = Arc::new(Mutex::new(Script {
        produce_errors: vec![ErrorCode::ConcurrentTransactions.code(); 2],
        v2: true,
        ..Default::default()
    }));
    let b = broker(script.clone()).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    p.begin_transaction().unwrap();
    let delivered = p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap().await;
    assert!(delivered.is_ok(), "{delivered:?}");
    p.commit_transaction(T).await.unwrap();
    let produces = log(&script).iter().filter(|(k, _, _)| *k == 0).count();
    assert_eq!(produces, 3, "two refused attempts, then the one that landed");
}

/// Every error the caller sees after the producer entered its fatal state says fatal and
/// not retriable: begin, send, commit, abort, send_offsets and flush.
async fn assert_every_call_is_fatal(p: &Producer, why: &str) {
    let check = |call: &str, e: Error| assert!(e.is_fatal() && !e.is_retriable(), "{why}: {call} -> {e}");
    check("begin_transaction", p.begin_transaction().unwrap_err());
    check("send", p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap_err());
    check("commit_transaction", p.commit_transaction(T).await.unwrap_err());
    check("abort_transaction", p.abort_transaction(T).await.unwrap_err());
    let offsets = std::collections::BTreeMap::new();
    let group = crate::consumer::ConsumerGroupMetadata { group_id: "g".into(), generation_id: -1, member_id: String::new(), group_instance_id: None };
    check("send_offsets_to_transaction", p.send_offsets_to_transaction(&offsets, &group, T).await.unwrap_err());
    if let Err(e) = p.flush().await {
        check("flush", e);
    }
}

/// Table: (EndTxn error code, commit or abort) — the coordinator's fatal answers to EndTxn.
#[tokio::test]
async fn every_fatal_end_txn_answer_makes_every_later_call_say_fatal() {
    let rows = [
        (ErrorCode::ProducerFenced, true),
        (ErrorCode::ProducerFenced, false),
        (ErrorCode::InvalidProducerEpoch, true),
        (ErrorCode::InvalidProducerEpoch, false),
        (ErrorCode::TransactionalIdAuthorizationFailed, true),
        (ErrorCode::TransactionalIdAuthorizationFailed, false),
        (ErrorCode::InvalidTxnState, true),
        (ErrorCode::UnsupportedForMessageFormat, true),
    ];
    for (code, commit) in rows {
        let why = format!("EndTxn {code:?} on {}", if commit { "commit" } else { "abort" });
        let script = Arc::new(Mutex::new(Script { end_errors: vec![code.code()], ..Default::default() }));
        let b = broker(script.clone()).await;
        let p = producer(&b).await;
        p.init_transactions(T).await.unwrap();
        open_transaction_with_a_record(&p).await;
        let e = if commit { p.commit_transaction(T).await } else { p.abort_transaction(T).await }.unwrap_err();
        assert!(e.is_fatal() && !e.is_retriable() && !e.is_abortable(), "{why}: the ending call -> {e}");
        assert_every_call_is_fatal(&p, &why).await;
    }
}

/// Table: InitProducerId's fatal answers.
#[tokio::test]
async fn every_fatal_init_producer_id_answer_makes_every_later_call_say_fatal() {
    for code in [ErrorCode::TransactionalIdAuthorizationFailed, ErrorCode::ProducerFenced, ErrorCode::InvalidProducerEpoch] {
        let why = format!("InitProducerId {code:?}");
        let script = Arc::new(Mutex::new(Script { init_errors: vec![code.code()], ..Default::default() }));
        let b = broker(script.clone()).await;
        let p = producer(&b).await;
        let e = p.init_transactions(T).await.unwrap_err();
        assert!(e.is_fatal() && !e.is_retriable(), "{why}: init_transactions -> {e}");
        assert_every_call_is_fatal(&p, &why).await;
    }
}

/// The coordinator requests that decide whether the transaction can go on.
#[derive(Debug, Clone, Copy)]
enum TxnApi {
    AddPartitionsToTxn,
    AddOffsetsToTxn,
    TxnOffsetCommit,
}

fn script_answering(api: TxnApi, code: ErrorCode) -> Script {
    let codes = vec![code.code()];
    match api {
        TxnApi::AddPartitionsToTxn => Script { add_errors: codes, ..Default::default() },
        TxnApi::AddOffsetsToTxn => Script { add_offsets_errors: codes, ..Default::default() },
        TxnApi::TxnOffsetCommit => Script { txn_offset_errors: codes, ..Default::default() },
    }
}

fn offsets() -> std::collections::BTreeMap<crate::consumer::TopicPartition, crate::consumer::OffsetAndMetadata> {
    [(crate::consumer::TopicPartition::new("t", 0), crate::consumer::OffsetAndMetadata::new(5))].into_iter().collect()
}

fn group() -> crate::consumer::ConsumerGroupMetadata {
    crate::consumer::ConsumerGroupMetadata { group_id: "g".into(), generation_id: 3, member_id: "m".into(), group_instance_id: None }
}

/// Begins a transaction and makes the call that sends `api` (whose answer is scripted):
/// returns the error the caller sees from it. AddPartitionsToTxn runs behind `send`, so
/// what the caller sees is the held record's delivery.
async fn the_call_that_sees(p: &Producer, api: TxnApi) -> Error {
    p.begin_transaction().unwrap();
    match api {
        TxnApi::AddPartitionsToTxn => p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap().await.unwrap_err(),
        TxnApi::AddOffsetsToTxn | TxnApi::TxnOffsetCommit => p.send_offsets_to_transaction(&offsets(), &group(), T).await.unwrap_err(),
    }
}

/// A transactional producer on a broker that answers `api` with `code`, and the error of
/// the call that saw that answer (the broker is returned so it lives as long as the producer).
async fn producer_that_saw(api: TxnApi, code: ErrorCode) -> (TcpBroker, Producer, Error) {
    let script = Arc::new(Mutex::new(script_answering(api, code)));
    let b = broker(script).await;
    let p = producer(&b).await;
    p.init_transactions(T).await.unwrap();
    let e = the_call_that_sees(&p, api).await;
    (b, p, e)
}

/// Table: the fatal answers of the coordinator requests inside a transaction
/// (AddPartitionsToTxn, AddOffsetsToTxn, and the group coordinator's TxnOffsetCommit), as the
/// Java client classes them: the call that saw it and every later call say fatal.
#[tokio::test]
async fn every_fatal_add_partitions_add_offsets_or_txn_offset_commit_answer_makes_every_later_call_say_fatal() {
    use TxnApi::*;
    let rows = [
        (AddPartitionsToTxn, ErrorCode::ProducerFenced),
        (AddPartitionsToTxn, ErrorCode::InvalidProducerEpoch),
        (AddPartitionsToTxn, ErrorCode::TransactionalIdAuthorizationFailed),
        (AddPartitionsToTxn, ErrorCode::InvalidTxnState),
        (AddPartitionsToTxn, ErrorCode::ClusterAuthorizationFailed),
        (AddOffsetsToTxn, ErrorCode::ProducerFenced),
        (AddOffsetsToTxn, ErrorCode::InvalidProducerEpoch),
        (AddOffsetsToTxn, ErrorCode::TransactionalIdAuthorizationFailed),
        (TxnOffsetCommit, ErrorCode::ProducerFenced),
        (TxnOffsetCommit, ErrorCode::InvalidProducerEpoch),
        (TxnOffsetCommit, ErrorCode::TransactionalIdAuthorizationFailed),
        // Codes the Java handlers do not expect are fatal there ("Unexpected error in ...").
        (AddPartitionsToTxn, ErrorCode::UnsupportedForMessageFormat),
        (AddPartitionsToTxn, ErrorCode::InvalidRequest),
        (AddOffsetsToTxn, ErrorCode::UnsupportedForMessageFormat),
        (AddOffsetsToTxn, ErrorCode::InvalidRequest),
        (TxnOffsetCommit, ErrorCode::UnsupportedForMessageFormat),
        (TxnOffsetCommit, ErrorCode::InvalidRequest),
    ];
    for (api, code) in rows {
        let why = format!("{api:?} {code:?}");
        let (_b, p, e) = producer_that_saw(api, code).await;
        assert!(e.is_fatal() && !e.is_retriable() && !e.is_abortable(), "{why}: the call that saw it -> {e}");
        let expected = if code == ErrorCode::InvalidProducerEpoch { ErrorCode::ProducerFenced } else { code };
        assert_eq!(e.code(), Some(expected), "{why}: {e}");
        assert_every_call_is_fatal(&p, &why).await;
    }
}

/// Table: the abortable answers of the same requests: the call that saw it says abortable
/// (not fatal, not retriable), so does commit; abort succeeds and the next transaction commits.
#[tokio::test]
async fn every_abortable_add_partitions_add_offsets_or_txn_offset_commit_answer_leaves_the_producer_abortable() {
    use TxnApi::*;
    let rows = [
        (AddPartitionsToTxn, ErrorCode::TopicAuthorizationFailed),
        (AddPartitionsToTxn, ErrorCode::TransactionAbortable),
        (AddOffsetsToTxn, ErrorCode::GroupAuthorizationFailed),
        (AddOffsetsToTxn, ErrorCode::TransactionAbortable),
        (TxnOffsetCommit, ErrorCode::GroupAuthorizationFailed),
        (TxnOffsetCommit, ErrorCode::UnknownMemberId),
        (TxnOffsetCommit, ErrorCode::IllegalGeneration),
        (TxnOffsetCommit, ErrorCode::FencedInstanceId),
        (TxnOffsetCommit, ErrorCode::TransactionAbortable),
    ];
    for (api, code) in rows {
        let why = format!("{api:?} {code:?}");
        let (_b, p, e) = producer_that_saw(api, code).await;
        assert!(e.is_abortable() && !e.is_fatal() && !e.is_retriable(), "{why}: the call that saw it -> {e}");
        assert_eq!(e.code(), Some(code), "{why}: {e}");
        let e = p.commit_transaction(T).await.unwrap_err();
        assert!(e.is_abortable() && !e.is_fatal() && !e.is_retriable(), "{why}: commit_transaction -> {e}");
        p.abort_transaction(T).await.unwrap_or_else(|e| panic!("{why}: abort_transaction -> {e}"));
        open_transaction_with_a_record(&p).await;
        p.commit_transaction(T).await.unwrap_or_else(|e| panic!("{why}: the next transaction's commit -> {e}"));
    }
}

/// Table: a partition leader's fatal answers to a Produce of the transaction. The record
/// fails fatal, so does a record sent while it was in flight; later sends fail at once;
/// commit and abort say fatal. (INVALID_PRODUCER_EPOCH from a leader is abortable with an
/// epoch bump, KIP-588, as in the Java client:
/// `a_batch_refused_for_its_epoch_makes_the_abort_bump_the_epoch_kip_588`.)
#[tokio::test]
async fn every_fatal_produce_answer_in_a_transaction_fails_its_records_and_makes_every_later_call_say_fatal() {
    for code in [ErrorCode::ProducerFenced, ErrorCode::TransactionalIdAuthorizationFailed, ErrorCode::ClusterAuthorizationFailed] {
        let why = format!("Produce {code:?}");
        let script = Arc::new(Mutex::new(Script {
            produce_errors: vec![code.code(); 2],
            produce_delay: Some(Duration::from_millis(100)),
            ..Default::default()
        }));
        let b = broker(script.clone()).await;
        let p = producer(&b).await;
        p.init_transactions(T).await.unwrap();
        p.begin_transaction().unwrap();
        let first = p.send(ProducerRecord::new("t").partition(0).value("v")).await.unwrap();
        // The first batch is at the broker, its answer held back: a second record follows.
        tokio::time::timeout(T, async {
            while !log(&script).iter().any(|(k, _, _)| *k == 0) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{why}: the first batch was never produced"));
        let second = p.send(ProducerRecord::new("t").partition(0).value("w")).await;
        let e = first.await.unwrap_err();
        assert!(e.is_fatal() && !e.is_retriable() && !e.is_abortable(), "{why}: the record in flight -> {e}");
        assert_eq!(e.code(), Some(code), "{why}: {e}");
        // Sent before or after the fatal answer arrived: fails fatal either way.
        let e = match second {
            Ok(f) => f.await.unwrap_err(),
            Err(e) => e,
        };
        assert!(e.is_fatal() && !e.is_retriable() && !e.is_abortable(), "{why}: the record sent while the first was in flight -> {e}");
        assert_every_call_is_fatal(&p, &why).await;
    }
}

/// Calls `call` until it succeeds: no error may say fatal, and every error must say
/// retriable (and then the next call must make progress: a few attempts at most).
async fn until_ok<V, Fut: std::future::Future<Output = crate::Result<V>>>(what: &str, mut call: impl FnMut() -> Fut) -> V {
    for attempt in 1..=3 {
        match call().await {
            Ok(v) => return v,
            Err(e) => assert!(!e.is_fatal() && e.is_retriable(), "{what}: attempt {attempt} -> {e}"),
        }
    }
    panic!("{what}: retriable three times in a row; retrying makes no progress");
}

fn served(s: &Arc<Mutex<Script>>) -> Vec<(i16, i32)> {
    s.lock().unwrap().served.clone()
}

fn txn_lookups(s: &Arc<Mutex<Script>>) -> usize {
    log(s).iter().filter(|(k, _, x)| *k == 10 && x == "key_type=1").count()
}

/// Coordinator failover (issue 11): the coordinator, node 1, dies between two transactions
/// (its open connection closes on the next request, new ones are refused, the metadata
/// drops it) and the first lookup after that still names it (BROKER_NOT_AVAILABLE inside
/// the client). The producer looks the coordinator up again until it gets node 0, and the
/// transaction commits; nothing the caller sees says fatal.
#[tokio::test]
async fn a_transaction_survives_its_coordinator_dropping_out_of_the_metadata() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let script = Arc::new(Mutex::new(Script { coordinators: vec![1], ..Default::default() }));
        let node0 = broker(script.clone()).await;
        let node1 = broker(script.clone()).await;
        {
            let mut s = script.lock().unwrap();
            s.node0_port = node0.port;
            s.node1_port = Some(node1.port);
        }
        let p = producer(&node0).await;
        until_ok("init_transactions", || p.init_transactions(T)).await;
        open_transaction_with_a_record(&p).await;
        until_ok("commit_transaction", || p.commit_transaction(T)).await;
        assert_eq!(served(&script), vec![(22, 1), (24, 1), (26, 1)], "node 1 is the coordinator: {:?}", log(&script));
        let lookups = txn_lookups(&script);
        {
            let mut s = script.lock().unwrap();
            s.node1_gone = true;
            // A lookup during the failover may still name the dead node.
            s.coordinators = vec![1, 0];
        }
        drop(node1);
        until_ok("begin_transaction", || std::future::ready(p.begin_transaction())).await;
        let send = || async { p.send(ProducerRecord::new("t").partition(0).value("v")).await?.await };
        until_ok("send", send).await;
        until_ok("commit_transaction", || p.commit_transaction(T)).await;
        let l = log(&script);
        assert_eq!(
            txn_lookups(&script) - lookups,
            2,
            "looked up again when node 1 failed (answer: still node 1), and again when node 1 was missing from the metadata (answer: node 0): {l:?}"
        );
        let dead_hits = script.lock().unwrap().dead_hits.clone();
        assert!(dead_hits.contains(&24), "AddPartitionsToTxn went to the dead coordinator first: {dead_hits:?} {l:?}");
        assert_eq!(served(&script)[3..], [(24, 0), (26, 0)], "AddPartitionsToTxn and EndTxn on node 0: {l:?}");
        // The next transaction runs on node 0 without another lookup.
        open_transaction_with_a_record(&p).await;
        until_ok("commit_transaction", || p.commit_transaction(T)).await;
        assert_eq!(txn_lookups(&script) - lookups, 2, "{:?}", log(&script));
    })
    .await
    .expect("the transaction did not complete within 10 s");
}

/// A lookup that names a node the metadata does not list (BROKER_NOT_AVAILABLE inside the
/// client) is retried with a new lookup, at init_transactions as well.
#[tokio::test]
async fn a_coordinator_the_metadata_does_not_list_is_looked_up_again() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let script = Arc::new(Mutex::new(Script { coordinators: vec![7, 0], ..Default::default() }));
        let b = broker(script.clone()).await;
        let p = producer(&b).await;
        until_ok("init_transactions", || p.init_transactions(T)).await;
        assert_eq!(txn_lookups(&script), 2, "{:?}", log(&script));
        open_transaction_with_a_record(&p).await;
        until_ok("commit_transaction", || p.commit_transaction(T)).await;
    })
    .await
    .expect("init_transactions did not complete within 10 s");
}
