//! The producer's batching against a scripted TCP broker that answers produce slowly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiVersionsRequest, InitProducerIdRequest, InitProducerIdResponse, MetadataRequest, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::network::testing::{api_versions, encode_response, single_node_metadata, Received, TcpBroker, TcpReply};
use crate::producer::{Producer, ProducerConfig, ProducerRecord};
use crate::record::layout;

/// ApiVersions, Metadata, Produce (v3–v11), InitProducerId.
const RANGES: &[(i16, i16, i16)] = &[(18, 0, 4), (3, 0, 12), (0, 3, 11), (22, 0, 4)];

/// One batch as the broker received it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    base_sequence: i32,
    records: i32,
    bytes: usize,
}

/// A one-partition broker whose produce answers each take `delay` (the connection reads
/// the next request only after answering, so requests queue up as on a slow broker).
/// Offsets are assigned in the order batches arrive.
async fn slow_broker(delay: Duration, seen: Arc<Mutex<Vec<Seen>>>) -> TcpBroker {
    TcpBroker::start(move |req: &Received, host, port| {
        let (corr, v) = (req.header.correlation_id, req.header.request_api_version);
        match req.header.request_api_key {
            18 => TcpReply::Frame(encode_response::<ApiVersionsRequest>(corr, v, &api_versions(RANGES))),
            3 => TcpReply::Frame(encode_response::<MetadataRequest>(corr, v, &single_node_metadata(host, port, "t", 1))),
            22 => {
                let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(7)).with_producer_epoch(0);
                TcpReply::Frame(encode_response::<InitProducerIdRequest>(corr, v, &resp))
            }
            0 => {
                let r = req.decode::<ProduceRequest>();
                let parts = &r.topic_data[0].partition_data;
                assert_eq!(parts.len(), 1, "one partition, one batch per request");
                let records = parts[0].records.clone().unwrap_or_default();
                let i32_at = |o: usize| i32::from_be_bytes(records[o..o + 4].try_into().unwrap());
                let batch =
                    Seen { base_sequence: i32_at(layout::BASE_SEQUENCE), records: i32_at(layout::RECORD_COUNT), bytes: records.len() };
                let base_offset = {
                    let mut s = seen.lock().unwrap();
                    let base: i32 = s.iter().map(|b| b.records).sum();
                    s.push(batch);
                    base as i64
                };
                let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(0)
                        .with_base_offset(base_offset)
                        .with_log_append_time_ms(-1)])]);
                TcpReply::Delayed(delay, encode_response::<ProduceRequest>(corr, v, &resp))
            }
            _ => TcpReply::Close,
        }
    })
    .await
}

/// Sends `records` records of ~50 bytes to partition 0, one every 2 ms, and checks that
/// they were written once each, in order; then closes the producer.
async fn send_one_record_every_2ms_and_check_the_offsets(cfg: ProducerConfig, records: usize) {
    let p = Producer::new(cfg).await.unwrap();
    let mut futures = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    for i in 0..records {
        tick.tick().await;
        let value = format!("record-{i:05}-{}", "x".repeat(30));
        futures.push(p.send(ProducerRecord::new("t").partition(0).key("k").value(value)).await.unwrap());
    }
    let offsets: Vec<i64> = futures::future::join_all(futures).await.into_iter().map(|r| r.unwrap().offset).collect();
    assert_eq!(offsets, (0..records as i64).collect::<Vec<_>>(), "every record written once, in order");
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// While produce requests are in flight (a slow broker), the partition's open batch keeps
/// taking records until the Sender can send it or it reaches `batch_size`: batches grow
/// instead of one tiny batch per linger queueing up behind the broker.
#[tokio::test]
async fn records_join_one_open_batch_up_to_batch_size_while_requests_are_in_flight() {
    const RECORDS: usize = 400;
    const BATCH_SIZE: usize = 3000;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let b = slow_broker(Duration::from_millis(150), seen.clone()).await;
    let cfg = ProducerConfig::new(b.addr()).linger(Duration::from_millis(5)).batch_size(BATCH_SIZE);
    send_one_record_every_2ms_and_check_the_offsets(cfg, RECORDS).await;

    let seen = seen.lock().unwrap().clone();
    let counts: Vec<i32> = seen.iter().map(|s| s.records).collect();
    // Sequences follow each other: no batch lost, duplicated or reordered.
    let mut next = 0;
    for s in &seen {
        assert_eq!(s.base_sequence, next, "{seen:?}");
        next += s.records;
    }
    assert_eq!(next as usize, RECORDS, "{counts:?}");
    // Never over batch_size (a record of ~60 bytes would not fit in what is left).
    assert!(seen.iter().all(|s| s.bytes <= BATCH_SIZE), "batches stay within batch_size: {seen:?}");
    // A record comes every 2 ms and an answer every 150 ms: while requests are in flight the
    // open batch fills up to batch_size (~45 records) instead of closing at each 5 ms linger
    // (2-3 records).
    let full = seen.iter().filter(|s| s.bytes + 100 > BATCH_SIZE).count();
    assert!(full * 3 >= seen.len(), "a good part of the batches filled to batch_size while the broker was busy: {counts:?}");
    assert!(seen.len() <= RECORDS / 20, "{} requests for {RECORDS} records: {counts:?}", seen.len());
}

/// Nagle's rule for partitions: while a batch of the partition is in flight, the next one
/// (not full) waits for that answer instead of going out at its linger, so every batch
/// after the first carries the records of a whole answer's wait. Without the rule the
/// Sender would send a tiny batch at every 5 ms linger until `max_in_flight` requests
/// queue up at the slow broker, each record then waiting behind all of them.
#[tokio::test]
async fn a_batch_that_is_not_full_waits_for_the_answer_to_its_partitions_batch_in_flight() {
    const RECORDS: usize = 300;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let b = slow_broker(Duration::from_millis(100), seen.clone()).await;
    // batch_size far above what 100 ms of records fill: no batch closes for being full.
    let cfg = ProducerConfig::new(b.addr()).linger(Duration::from_millis(5)).batch_size(1 << 20);
    send_one_record_every_2ms_and_check_the_offsets(cfg, RECORDS).await;

    let seen = seen.lock().unwrap().clone();
    let counts: Vec<i32> = seen.iter().map(|s| s.records).collect();
    assert_eq!(counts.iter().sum::<i32>() as usize, RECORDS, "{counts:?}");
    // 600 ms of records, one answer per 100 ms: about 7 requests (the first small, the last
    // whatever is left); one per linger would be over 100.
    assert!(seen.len() <= 12, "{} requests: {counts:?}", seen.len());
    // A record every 2 ms: a batch that waited a whole answer (100 ms) holds about 50; one
    // sent at its linger 2-3. Every batch but the first and the last waited.
    let middle = &counts[1..counts.len().saturating_sub(1)];
    assert!(middle.iter().all(|&n| n >= 15), "every batch after the first waited for the answer before it: {counts:?}");
}

/// The Sender drains with the metadata it has: an answer that makes the metadata stale
/// (NOT_LEADER_OR_FOLLOWER for partition 0) while the broker takes 3 s to answer Metadata
/// must not hold partition 1's records (nor partition 0's retry to the same leader) for
/// those 3 s.
#[tokio::test]
async fn a_slow_metadata_refresh_does_not_hold_the_records_of_other_partitions() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let metadata_requests = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let next_offset = Arc::new(Mutex::new([0i64; 2]));
    let (m, r, n) = (metadata_requests.clone(), refused.clone(), next_offset.clone());
    let b = TcpBroker::start(move |req: &Received, host, port| {
        let (corr, v) = (req.header.correlation_id, req.header.request_api_version);
        match req.header.request_api_key {
            18 => TcpReply::Frame(encode_response::<ApiVersionsRequest>(corr, v, &api_versions(RANGES))),
            3 => {
                let frame = encode_response::<MetadataRequest>(corr, v, &single_node_metadata(host, port, "t", 2));
                // The first answers at once (the producer starts); every later one is slow.
                if m.fetch_add(1, Ordering::SeqCst) == 0 {
                    TcpReply::Frame(frame)
                } else {
                    TcpReply::Delayed(Duration::from_secs(3), frame)
                }
            }
            22 => {
                let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(7)).with_producer_epoch(0);
                TcpReply::Frame(encode_response::<InitProducerIdRequest>(corr, v, &resp))
            }
            0 => {
                let req = req.decode::<ProduceRequest>();
                let mut parts = Vec::new();
                for p in &req.topic_data[0].partition_data {
                    let records = p.records.clone().unwrap_or_default();
                    let count = i32::from_be_bytes(records[layout::RECORD_COUNT..layout::RECORD_COUNT + 4].try_into().unwrap());
                    let answer = PartitionProduceResponse::default().with_index(p.index).with_log_append_time_ms(-1);
                    if p.index == 0 && !r.swap(true, Ordering::SeqCst) {
                        parts.push(answer.with_error_code(6)); // NOT_LEADER_OR_FOLLOWER, once
                    } else {
                        let mut offsets = n.lock().unwrap();
                        parts.push(answer.with_base_offset(offsets[p.index as usize]));
                        offsets[p.index as usize] += count as i64;
                    }
                }
                let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_responses(parts)]);
                TcpReply::Frame(encode_response::<ProduceRequest>(corr, v, &resp))
            }
            _ => TcpReply::Close,
        }
    })
    .await;
    let p = Producer::new(ProducerConfig::new(b.addr()).linger(Duration::from_millis(5))).await.unwrap();
    // Partition 0's first batch is refused: the metadata is now stale.
    let first = p.send(ProducerRecord::new("t").partition(0).value("refused once")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), async {
        while !refused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("partition 0's batch was answered");
    let started = std::time::Instant::now();
    let mut later = Vec::new();
    for i in 0..20 {
        later.push(p.send(ProducerRecord::new("t").partition(1).value(format!("record {i}"))).await.unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (i, f) in later.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().offset, i as i64, "partition 1's records in order");
    }
    assert_eq!(first.await.unwrap().offset, 0, "partition 0's record retried to the same leader");
    let took = started.elapsed();
    assert!(metadata_requests.load(Ordering::SeqCst) >= 2, "the stale metadata was refreshed (in the background)");
    assert!(took < Duration::from_millis(2500), "the records waited {took:?}, as long as the 3 s metadata refresh");
    p.close(Duration::from_secs(5)).await.unwrap();
}
