//! `ExactlyOncePipeline` against a scripted transactional broker (transaction protocol
//! v2, one node that is leader, group and transaction coordinator): the broker keeps the
//! committed output, the pending output of the open transaction and the group's committed
//! offsets, so a test can check the end result for loss and duplicates after injected
//! errors (issue 11, defect 1).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::FinalizedFeatureKey;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData as RespPartition};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::find_coordinator_response::Coordinator as RespCoordinator;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, EndTxnRequest, EndTxnResponse, FetchRequest, FetchResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    OffsetFetchRequest, OffsetFetchResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::{ExactlyOncePipeline, PipelineConfig};
use crate::consumer::{Consumer, ConsumerConfig, IsolationLevel, TopicPartition};
use crate::error::ErrorCode;
use crate::network::testing::{
    api_versions, encode_response, partitions_on_node_0, single_node_metadata, txn_offset_commit_answer, TcpBroker, TcpReply,
};
use crate::producer::{Producer, ProducerConfig, ProducerRecord};
use crate::record::{batches, BatchWriter, Compression};

const IN: &str = "in";
const OUT: &str = "out";
const PARTITIONS: i32 = 2;
/// Input records per partition.
const N: i64 = 60;
/// Records per fetch answer (so a copy takes several batches).
const PER_FETCH: i64 = 10;

/// ApiVersions, Metadata, Fetch, ListOffsets, OffsetFetch, FindCoordinator, InitProducerId,
/// Produce v12, EndTxn v5, TxnOffsetCommit v5 (+ `transaction.version` 2).
const RANGES: &[(i16, i16, i16)] =
    &[(18, 0, 4), (3, 0, 12), (1, 4, 12), (2, 1, 7), (9, 1, 7), (10, 0, 4), (22, 0, 5), (0, 3, 12), (26, 0, 5), (28, 0, 5)];

#[derive(Default)]
struct Cluster {
    epoch: i16,
    /// Output of the open transaction, and what committed.
    pending_out: Vec<String>,
    committed_out: Vec<String>,
    pending_offsets: BTreeMap<i32, i64>,
    committed_offsets: BTreeMap<i32, i64>,
    /// Error codes to answer TxnOffsetCommit / Produce with, in order, before succeeding.
    offset_commit_errors: Vec<i16>,
    produce_errors: Vec<i16>,
    /// Fetch offsets asked for, per partition (to see skips).
    fetched_from: Vec<(i32, i64)>,
}

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_owned()))
}

/// The input batch of partition `p` from `offset` (up to PER_FETCH records, values
/// "p<p>-<offset>").
fn input_batch(p: i32, offset: i64) -> Bytes {
    if offset >= N {
        return Bytes::new();
    }
    let mut w = BatchWriter::new(Compression::None, 0);
    for o in offset..(offset + PER_FETCH).min(N) {
        w.append(0, None, Some(format!("p{p}-{o}").as_bytes()), &[]);
    }
    let mut v = w.finish().unwrap().bytes().to_vec();
    v[crate::record::layout::BASE_OFFSET..crate::record::layout::BASE_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
    Bytes::from(v)
}

async fn broker(c: Arc<Mutex<Cluster>>) -> TcpBroker {
    TcpBroker::start(move |req, host, port| {
        let (corr, v) = (req.header.correlation_id, req.header.request_api_version);
        let mut c = c.lock().unwrap();
        let frame = TcpReply::Frame;
        match req.header.request_api_key {
            18 => {
                let resp = api_versions(RANGES).with_finalized_features_epoch(1).with_finalized_features(vec![
                    FinalizedFeatureKey::default()
                        .with_name(StrBytes::from_static_str("transaction.version"))
                        .with_max_version_level(2)
                        .with_min_version_level(2),
                ]);
                frame(encode_response::<ApiVersionsRequest>(corr, v, &resp))
            }
            3 => {
                let mut resp = single_node_metadata(host, port, IN, PARTITIONS);
                resp.topics.push(MetadataResponseTopic::default().with_name(Some(name(OUT))).with_partitions(partitions_on_node_0(PARTITIONS)));
                frame(encode_response::<MetadataRequest>(corr, v, &resp))
            }
            10 => {
                let r = req.decode::<FindCoordinatorRequest>();
                let coordinator = RespCoordinator::default()
                    .with_key(r.coordinator_keys.first().cloned().unwrap_or_default())
                    .with_node_id(BrokerId(0))
                    .with_host(StrBytes::from_string(host.to_owned()))
                    .with_port(port);
                let resp = if v >= 4 {
                    FindCoordinatorResponse::default().with_coordinators(vec![coordinator])
                } else {
                    FindCoordinatorResponse::default()
                        .with_node_id(BrokerId(0))
                        .with_host(StrBytes::from_string(host.to_owned()))
                        .with_port(port)
                };
                frame(encode_response::<FindCoordinatorRequest>(corr, v, &resp))
            }
            22 => {
                // A new epoch aborts an open transaction.
                c.epoch += 1;
                c.pending_out.clear();
                c.pending_offsets.clear();
                let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(7)).with_producer_epoch(c.epoch);
                frame(encode_response::<InitProducerIdRequest>(corr, v, &resp))
            }
            9 => {
                let r = req.decode::<OffsetFetchRequest>();
                let topics = r
                    .topics
                    .unwrap_or_default()
                    .iter()
                    .map(|t| {
                        OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(c.committed_offsets.get(p).copied().unwrap_or(-1))
                                })
                                .collect(),
                        )
                    })
                    .collect();
                frame(encode_response::<OffsetFetchRequest>(corr, v, &OffsetFetchResponse::default().with_topics(topics)))
            }
            2 => {
                // The input starts at offset 0 (the pipeline's consumer resets to earliest).
                let r = req.decode::<ListOffsetsRequest>();
                let topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index).with_offset(0))
                                .collect(),
                        )
                    })
                    .collect();
                frame(encode_response::<ListOffsetsRequest>(corr, v, &ListOffsetsResponse::default().with_topics(topics)))
            }
            1 => {
                let f = req.decode::<FetchRequest>();
                let mut topics = Vec::new();
                for t in &f.topics {
                    let mut parts = Vec::new();
                    for p in &t.partitions {
                        c.fetched_from.push((p.partition, p.fetch_offset));
                        parts.push(
                            RespPartition::default()
                                .with_partition_index(p.partition)
                                .with_high_watermark(N)
                                .with_last_stable_offset(N)
                                .with_log_start_offset(0)
                                .with_records(Some(input_batch(p.partition, p.fetch_offset))),
                        );
                    }
                    topics.push(FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(parts));
                }
                let bytes = encode_response::<FetchRequest>(corr, v, &FetchResponse::default().with_responses(topics));
                // Nothing new: answer like a long poll, not at once.
                let empty = f.topics.iter().all(|t| t.partitions.iter().all(|p| p.fetch_offset >= N));
                if empty { TcpReply::Delayed(Duration::from_millis(50), bytes) } else { frame(bytes) }
            }
            0 => {
                let r = req.decode::<ProduceRequest>();
                let code = if c.produce_errors.is_empty() { 0 } else { c.produce_errors.remove(0) };
                let mut responses = Vec::new();
                for t in &r.topic_data {
                    let mut parts = Vec::new();
                    for p in &t.partition_data {
                        if code == 0 {
                            let mut it = batches(p.records.clone().unwrap_or_default(), 1 << 20);
                            while let Some(Ok(b)) = it.next_raw() {
                                for rec in b.decode(1 << 20).unwrap().records {
                                    c.pending_out.push(String::from_utf8(rec.value.unwrap().to_vec()).unwrap());
                                }
                            }
                        }
                        parts.push(PartitionProduceResponse::default().with_index(p.index).with_error_code(code));
                    }
                    responses.push(TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(parts));
                }
                frame(encode_response::<ProduceRequest>(corr, v, &ProduceResponse::default().with_responses(responses)))
            }
            28 => {
                let r = req.decode::<TxnOffsetCommitRequest>();
                let code = if c.offset_commit_errors.is_empty() { 0 } else { c.offset_commit_errors.remove(0) };
                if code == 0 {
                    for t in &r.topics {
                        for p in &t.partitions {
                            c.pending_offsets.insert(p.partition_index, p.committed_offset);
                        }
                    }
                }
                frame(encode_response::<TxnOffsetCommitRequest>(corr, v, &txn_offset_commit_answer(&r, code)))
            }
            26 => {
                let r = req.decode::<EndTxnRequest>();
                let out = std::mem::take(&mut c.pending_out);
                let offsets = std::mem::take(&mut c.pending_offsets);
                if r.committed {
                    c.committed_out.extend(out);
                    c.committed_offsets.extend(offsets);
                }
                c.epoch += 1;
                let resp = EndTxnResponse::default().with_producer_id(ProducerId(7)).with_producer_epoch(c.epoch);
                frame(encode_response::<EndTxnRequest>(corr, v, &resp))
            }
            _ => TcpReply::Close,
        }
    })
    .await
}

async fn pipeline(b: &TcpBroker, call_timeout: Duration) -> ExactlyOncePipeline {
    let mut cc = ConsumerConfig::new(b.addr())
        .group_id("g")
        .auto_offset_reset(crate::consumer::OffsetReset::Earliest)
        .isolation_level(IsolationLevel::ReadCommitted)
        .enable_auto_commit(false)
        .fetch_max_wait(Duration::from_millis(50));
    cc.client.retry_backoff = Duration::from_millis(10);
    let consumer = Consumer::new(cc).await.unwrap();
    consumer.assign((0..PARTITIONS).map(|p| TopicPartition::new(IN, p)).collect()).unwrap();
    let mut pc = ProducerConfig::new(b.addr()).transactional_id("copier").linger(Duration::from_millis(1));
    pc.client.retry_backoff = Duration::from_millis(10);
    let producer = Producer::new(pc).await.unwrap();
    let cfg = PipelineConfig { poll_timeout: Duration::from_millis(200), call_timeout };
    ExactlyOncePipeline::with_config(consumer, producer, cfg).await.unwrap()
}

fn copy(r: &crate::consumer::ConsumerRecord) -> Vec<ProducerRecord> {
    vec![ProducerRecord { topic: OUT.into(), partition: Some(r.partition), value: r.value.clone(), ..Default::default() }]
}

/// Drives the pipeline as its docs say (again after every non-fatal error) until the
/// group's committed offsets reach the input's end, or `limit` passes.
async fn drive(p: &ExactlyOncePipeline, c: &Arc<Mutex<Cluster>>, limit: Duration) -> Vec<String> {
    let mut errors = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let done = {
            let c = c.lock().unwrap();
            (0..PARTITIONS).all(|p| c.committed_offsets.get(&p) == Some(&N))
        };
        if done {
            break;
        }
        match p.run_once(copy).await {
            Ok(_) => {}
            Err(e) => {
                assert!(!e.is_fatal(), "nothing here is fatal: {e}");
                errors.push(e.to_string());
            }
        }
    }
    errors
}

/// Every input value exactly once in the committed output, and the committed offsets at
/// the end.
fn assert_exactly_once(c: &Cluster) {
    let mut want: Vec<String> = (0..PARTITIONS).flat_map(|p| (0..N).map(move |o| format!("p{p}-{o}"))).collect();
    let mut got = c.committed_out.clone();
    want.sort();
    got.sort();
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
    let mut dups = got.clone();
    dups.dedup();
    assert!(missing.is_empty(), "{} input records lost (never committed to the output), first {:?}", missing.len(), missing.first());
    assert_eq!(got.len(), dups.len(), "duplicates in the committed output");
    assert_eq!(got, want);
    for p in 0..PARTITIONS {
        assert_eq!(c.committed_offsets.get(&p), Some(&N), "committed offsets of partition {p}");
    }
}

/// Issue 11's sequence: the TxnOffsetCommit of the first transaction keeps answering
/// COORDINATOR_LOAD_IN_PROGRESS until `send_offsets_to_transaction` times out (retriable);
/// meanwhile its produce is retried on NOT_ENOUGH_REPLICAS and then fails with
/// CONCURRENT_TRANSACTIONS (abortable). Calling `run_once` again after each error must
/// neither skip input nor wedge.
#[tokio::test]
async fn a_retriable_offset_commit_then_an_abortable_produce_error_skips_no_input() {
    let nr = ErrorCode::NotEnoughReplicas.code();
    let mut produce_errors = vec![nr; 40];
    produce_errors.push(ErrorCode::ConcurrentTransactions.code());
    let c = Arc::new(Mutex::new(Cluster {
        offset_commit_errors: vec![ErrorCode::CoordinatorLoadInProgress.code(); 30],
        produce_errors,
        ..Default::default()
    }));
    let b = broker(c.clone()).await;
    let p = pipeline(&b, Duration::from_millis(300)).await;
    let errors = drive(&p, &c, Duration::from_secs(20)).await;
    assert!(!errors.is_empty() && errors[0].contains("TxnOffsetCommit"), "the offset commit timed out first: {errors:?}");
    assert!(
        errors.iter().all(|e| !e.contains("invalid transaction state")),
        "the pipeline never wedges in a transaction state: {errors:?}"
    );
    let c = c.lock().unwrap();
    assert!(c.offset_commit_errors.is_empty() && c.produce_errors.is_empty(), "every injected error was met");
    assert_exactly_once(&c);
}

/// A retriable error of the commit leaves the transaction open: the next call retries the
/// commit and polls nothing meanwhile.
#[tokio::test]
async fn a_dropped_run_once_is_finished_or_aborted_by_the_next_call_without_loss() {
    let c = Arc::new(Mutex::new(Cluster { produce_errors: vec![ErrorCode::NotEnoughReplicas.code(); 20], ..Default::default() }));
    let b = broker(c.clone()).await;
    let p = pipeline(&b, Duration::from_secs(5)).await;
    // Cut calls short at every stage: the future is dropped while sending, sending offsets
    // or committing.
    for ms in [1u64, 5, 20, 50, 100, 200] {
        let _ = tokio::time::timeout(Duration::from_millis(ms), p.run_once(copy)).await;
    }
    let errors = drive(&p, &c, Duration::from_secs(20)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_exactly_once(&c.lock().unwrap());
}
