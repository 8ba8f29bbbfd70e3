//! The real consumer path (pool, handshake, metadata, fetch task, poll) against a scripted
//! broker on a TCP socket: corrupt fetch answers give clear errors and no panic, and the
//! fetch task speaks KIP-227 sessions as the protocol says.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData as RespPartition};
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{Consumer, ConsumerConfig, TopicPartition};
use crate::error::{Error, ErrorCode};
use crate::network::testing::{api_versions, encode_response, partitions_on_node_0, Received, TcpBroker, TcpReply};
use crate::record::{crc32c, layout, BatchWriter, Compression};

const TOPIC: &str = "t";
const TS: i64 = 1_700_000_000_000;
/// ApiVersions, Metadata, Fetch, ListOffsets as a Kafka 4.x broker advertises them.
const RANGES: &[(i16, i16, i16)] = &[(18, 0, 4), (3, 0, 12), (1, 4, 17), (2, 1, 10)];

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_owned()))
}

/// A batch at `base` holding `values`, with leader epoch 0.
fn batch_with(codec: Compression, base: i64, values: &[&[u8]]) -> Vec<u8> {
    let mut w = BatchWriter::new(codec, TS);
    for (i, v) in values.iter().enumerate() {
        w.append(TS + i as i64, Some(format!("k{}", base + i as i64).as_bytes()), Some(v), &[]);
    }
    let mut v = w.finish().unwrap().bytes().to_vec();
    v[layout::BASE_OFFSET..layout::BASE_OFFSET + 8].copy_from_slice(&base.to_be_bytes());
    v[layout::PARTITION_LEADER_EPOCH..layout::PARTITION_LEADER_EPOCH + 4].copy_from_slice(&0i32.to_be_bytes());
    v
}

fn batch(base: i64, values: &[&str]) -> Vec<u8> {
    let vs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    batch_with(Compression::None, base, &vs)
}

/// Recomputes a hand-edited batch's CRC, so the decoder gets past it to the bad field.
fn fix_crc(b: &mut [u8]) {
    let crc = crc32c(&b[layout::ATTRIBUTES..]);
    b[layout::CRC..layout::CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Answers ApiVersions and Metadata (this broker, node 0, leads every partition of topic
/// `t` with `partitions` partitions); Fetch goes to `fetch`; anything else closes.
async fn broker<F>(partitions: i32, fetch: F) -> TcpBroker
where
    F: Fn(&Received, FetchRequest) -> TcpReply + Send + Sync + 'static,
{
    TcpBroker::start(move |req, host, port| {
        let (corr, version) = (req.header.correlation_id, req.header.request_api_version);
        match req.header.request_api_key {
            18 => TcpReply::Frame(encode_response::<ApiVersionsRequest>(corr, version, &api_versions(RANGES))),
            3 => {
                let parts = partitions_on_node_0(partitions);
                let resp = MetadataResponse::default()
                    .with_brokers(vec![MetadataResponseBroker::default()
                        .with_node_id(BrokerId(0))
                        .with_host(StrBytes::from_string(host.to_owned()))
                        .with_port(port)])
                    .with_controller_id(BrokerId(0))
                    .with_topics(vec![MetadataResponseTopic::default().with_name(Some(name(TOPIC))).with_partitions(parts)]);
                TcpReply::Frame(encode_response::<MetadataRequest>(corr, version, &resp))
            }
            1 => fetch(req, req.decode::<FetchRequest>()),
            _ => TcpReply::Close,
        }
    })
    .await
}

/// A sessionless answer holding `records` for every partition the request names.
fn answer(req: &Received, fetch: &FetchRequest, records: &Bytes) -> TcpReply {
    let topics = fetch
        .topics
        .iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    RespPartition::default()
                        .with_partition_index(p.partition)
                        .with_high_watermark(1000)
                        .with_last_stable_offset(1000)
                        .with_log_start_offset(0)
                        .with_records(Some(records.clone()))
                })
                .collect();
            FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(parts)
        })
        .collect();
    let resp = FetchResponse::default().with_responses(topics);
    TcpReply::Frame(encode_response::<FetchRequest>(req.header.correlation_id, req.header.request_api_version, &resp))
}

fn fetch_offset(f: &FetchRequest) -> i64 {
    f.topics.first().and_then(|t| t.partitions.first()).map_or(-1, |p| p.fetch_offset)
}

/// A consumer of `t-0` on `b`, positioned at 0.
async fn consumer(b: &TcpBroker, cfg: impl FnOnce(ConsumerConfig) -> ConsumerConfig) -> Consumer {
    let mut c = ConsumerConfig::new(b.addr()).fetch_max_wait(Duration::from_millis(50));
    c.client.request_timeout = Duration::from_secs(5);
    c.client.retry_backoff = Duration::from_millis(20);
    let c = Consumer::new(cfg(c)).await.unwrap();
    let tp = TopicPartition::new(TOPIC, 0);
    c.assign(vec![tp.clone()]).unwrap();
    c.seek(&tp, 0).unwrap();
    c
}

/// Polls until an error or `n` records, within 10 s.
async fn poll_until_error(c: &Consumer) -> (Vec<i64>, Error) {
    let mut got = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match c.poll(Duration::from_millis(200)).await {
                Ok(rs) => got.extend(rs.iter().map(|r| r.offset)),
                Err(e) => return e,
            }
        }
    })
    .await;
    match r {
        Ok(e) => (got, e),
        Err(_) => panic!("no error within 10 s; records {got:?}"),
    }
}

/// A broker whose partition holds `records` at every fetch offset up to `until`, nothing after.
async fn serving(records: Vec<u8>, until: i64) -> TcpBroker {
    let records = Bytes::from(records);
    broker(1, move |req, f| {
        let data = if fetch_offset(&f) < until { records.clone() } else { Bytes::new() };
        answer(req, &f, &data)
    })
    .await
}

#[tokio::test]
async fn a_bad_crc_is_a_corrupt_record_error_naming_topic_partition_and_offset() {
    let mut bad = batch(3, &["d", "e"]);
    let n = bad.len();
    bad[n - 1] ^= 0x40;
    let b = serving([batch(0, &["a", "b", "c"]), bad].concat(), 5).await;
    let c = consumer(&b, |c| c).await;
    let (got, e) = poll_until_error(&c).await;
    assert_eq!(got, vec![0, 1, 2], "the records before the bad batch arrive first");
    match &e {
        Error::CorruptRecord { topic, partition, offset, detail } => {
            assert_eq!((topic.as_str(), *partition, *offset), (TOPIC, 0, 3));
            assert!(detail.contains("CRC"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("t-0") && msg.contains("offset 3"), "{msg}");
    assert_eq!(c.position(&TopicPartition::new(TOPIC, 0)).await.unwrap(), 3, "the position stays at the bad batch");
    // Polling on fetches the bad batch again: the same error, no records skipped.
    let (again, e2) = poll_until_error(&c).await;
    assert!(again.is_empty());
    assert!(matches!(e2, Error::CorruptRecord { offset: 3, .. }), "{e2}");
}

#[tokio::test]
async fn a_truncated_trailing_batch_is_fetched_again_without_loss_or_error() {
    let second = batch(3, &["d", "e"]);
    let cut = Bytes::from([batch(0, &["a", "b", "c"]), second[..second.len() - 9].to_vec()].concat());
    let whole = Bytes::from(second);
    let b = broker(1, move |req, f| {
        let data = match fetch_offset(&f) {
            0 => cut.clone(),
            3 => whole.clone(),
            _ => Bytes::new(),
        };
        answer(req, &f, &data)
    })
    .await;
    let c = consumer(&b, |c| c).await;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "only {got:?}");
        got.extend(c.poll(Duration::from_millis(200)).await.unwrap().iter().map(|r| r.offset));
    }
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    assert!(c.poll(Duration::from_millis(200)).await.unwrap().is_empty());
}

#[tokio::test]
async fn absurd_lengths_are_clear_errors_without_huge_allocations() {
    // (what to break, the detail the error must carry)
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Record count i32::MAX in a batch of two records (CRC made valid).
        ({
            let mut b = batch(0, &["a", "b"]);
            b[layout::RECORD_COUNT..layout::RECORD_COUNT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
            fix_crc(&mut b);
            b
        }, "count"),
        // A negative batch length.
        ({
            let mut b = batch(0, &["a", "b"]);
            b[layout::BATCH_LENGTH..layout::BATCH_LENGTH + 4].copy_from_slice(&(-5i32).to_be_bytes());
            b
        }, "length"),
        // A batch length of i32::MAX: only part of a batch is all the fetch holds.
        ({
            let mut b = batch(0, &["a", "b"]);
            b[layout::BATCH_LENGTH..layout::BATCH_LENGTH + 4].copy_from_slice(&i32::MAX.to_be_bytes());
            b
        }, "part of a batch"),
        // The first record's length varint says -2^31 (zigzag 0xffffffff), CRC valid.
        ({
            let mut b = batch(0, &["a", "b"]);
            let at = layout::HEADER_SIZE;
            let mut v = b[..at].to_vec();
            v.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
            v.extend_from_slice(&b[at + 1..]);
            let len = (v.len() - layout::LOG_OVERHEAD) as i32;
            v[layout::BATCH_LENGTH..layout::BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
            fix_crc(&mut v);
            b = v;
            b
        }, ""),
        // A key length of i32::MAX inside the first record.
        ({
            let b = batch(0, &["a", "b"]);
            // record: length varint (1 byte), attributes, timestamp delta varlong (0), offset
            // delta varint (0), then the key length varint.
            let at = layout::HEADER_SIZE + 4;
            let mut v = b[..at].to_vec();
            v.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]); // zigzag(i32::MAX)
            v.extend_from_slice(&b[at + 1..]);
            let len = (v.len() - layout::LOG_OVERHEAD) as i32;
            v[layout::BATCH_LENGTH..layout::BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
            fix_crc(&mut v);
            v
        }, ""),
    ];
    for (i, (records, want)) in cases.into_iter().enumerate() {
        let b = serving(records, i64::MAX).await;
        let c = consumer(&b, |c| c).await;
        let (got, e) = poll_until_error(&c).await;
        assert!(got.is_empty(), "case {i}: {got:?}");
        match &e {
            Error::CorruptRecord { topic, partition: 0, offset: 0, detail } if topic == TOPIC => {
                assert!(detail.contains(want), "case {i}: {detail}");
            }
            other => panic!("case {i}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_decompression_bomb_is_a_clear_error() {
    let zeros = vec![0u8; 100 << 20];
    for codec in [Compression::Zstd, Compression::Lz4] {
        let bomb = batch_with(codec, 0, &[&zeros]);
        assert!(bomb.len() < 1 << 20, "{codec:?}: {} bytes", bomb.len());
        let b = serving(bomb, i64::MAX).await;
        let c = consumer(&b, |c| c.max_decompressed_batch_bytes(1 << 20)).await;
        let (got, e) = poll_until_error(&c).await;
        assert!(got.is_empty());
        match &e {
            Error::CorruptRecord { topic, partition: 0, offset: 0, detail } if topic == TOPIC => {
                assert!(detail.contains("exceeds limit"), "{codec:?}: {detail}");
            }
            other => panic!("{codec:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn garbage_fetch_frames_are_errors_not_panics_or_hangs() {
    // Deterministic "random" bytes.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let random = noise(300);
    let body = noise(200);
    type Script = Box<dyn Fn(i32) -> Vec<u8> + Send + Sync>;
    let cases: Vec<(&str, Script)> = vec![
        // A frame of random bytes (whatever correlation id they spell).
        ("random frame", Box::new(move |_| [&(random.len() as i32).to_be_bytes()[..], &random].concat())),
        // The right correlation id, then a random body.
        ("random body", Box::new(move |corr| {
            [&((body.len() + 4) as i32).to_be_bytes()[..], &corr.to_be_bytes(), &body].concat()
        })),
        // A size prefix beyond max_response_size.
        ("huge frame", Box::new(|_| vec![0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1])),
        // A negative size prefix.
        ("negative size", Box::new(|_| vec![0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 1])),
        // A valid frame whose records length runs past the end of the frame.
        ("records past the frame", Box::new(|corr| {
            let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic(name(TOPIC))
                .with_partitions(vec![RespPartition::default().with_records(Some(Bytes::from_static(b"0123456789")))])]);
            let mut f = encode_response::<FetchRequest>(corr, 12, &resp).to_vec();
            // v12 is flexible: records are compact bytes, a uvarint of len + 1 just before
            // the 10 record bytes.
            let at = f.windows(10).position(|w| w == b"0123456789").expect("records") - 1;
            assert_eq!(f[at], 11);
            f[at] = 0x7f;
            f
        })),
    ];
    for (what, script) in cases {
        let b = broker(1, move |req, _| {
            assert_eq!(req.header.request_api_version, 12);
            TcpReply::Frame(Bytes::from(script(req.header.correlation_id)))
        })
        .await;
        let c = consumer(&b, |c| c).await;
        let (got, e) = poll_until_error(&c).await;
        assert!(got.is_empty(), "{what}: {got:?}");
        assert!(
            matches!(e, Error::Protocol { .. } | Error::FrameTooLarge { .. } | Error::WrongProtocol { .. }),
            "{what}: {e:?}"
        );
        // The consumer keeps trying (a new connection) and keeps answering.
        let (_, e2) = poll_until_error(&c).await;
        assert!(!matches!(e2, Error::Closed), "{what}: {e2:?}");
        c.close().await.unwrap();
    }
}

/// One fetch as the session broker saw it: session id, epoch, partitions sent (with their
/// fetch offsets), partitions forgotten.
type SeenFetch = (i32, i32, Vec<(i32, i64)>, Vec<i32>);

/// A broker that keeps KIP-227 sessions for real: the partitions of the session with their
/// fetch offsets, the epoch it expects, and logs of single-record batches per partition.
#[derive(Default)]
struct SessionBroker {
    session: BTreeMap<i32, i64>,
    session_id: i32,
    next_epoch: i32,
    logs: HashMap<i32, Vec<Vec<u8>>>,
    /// (session id, epoch, partitions sent, partitions forgotten) of every fetch.
    seen: Vec<SeenFetch>,
    /// Answer the next incremental fetch FETCH_SESSION_ID_NOT_FOUND.
    lose_session: bool,
    closed: Vec<i32>,
}

impl SessionBroker {
    fn append(&mut self, p: i32, value: &str) {
        let log = self.logs.entry(p).or_default();
        let off = log.len() as i64;
        log.push(batch(off, &[value]));
    }

    fn fetch(&mut self, req: &Received, f: FetchRequest) -> TcpReply {
        let sent: Vec<(i32, i64)> =
            f.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.fetch_offset))).collect();
        let forgot: Vec<i32> = f.forgotten_topics_data.iter().flat_map(|t| t.partitions.clone()).collect();
        self.seen.push((f.session_id, f.session_epoch, sent.clone(), forgot.clone()));
        let frame = |resp: &FetchResponse| {
            encode_response::<FetchRequest>(req.header.correlation_id, req.header.request_api_version, resp)
        };
        if f.session_epoch == -1 {
            if f.session_id != 0 {
                self.closed.push(f.session_id);
                self.session.clear();
            }
            return TcpReply::Frame(frame(&FetchResponse::default()));
        }
        let full = f.session_epoch == 0;
        if full {
            self.session_id += 1;
            self.next_epoch = 1;
            self.session = sent.iter().copied().collect();
        } else {
            if self.lose_session || f.session_id != self.session_id {
                self.lose_session = false;
                let e = ErrorCode::FetchSessionIdNotFound.code();
                return TcpReply::Frame(frame(&FetchResponse::default().with_error_code(e)));
            }
            assert_eq!(f.session_epoch, self.next_epoch, "epochs go up by one");
            self.next_epoch += 1;
            for p in &forgot {
                assert!(self.session.remove(p).is_some(), "forgot {p}, not in the session");
            }
            for &(p, off) in &sent {
                self.session.insert(p, off);
            }
        }
        let mut parts = Vec::new();
        for (&p, &off) in &self.session {
            let log = self.logs.get(&p).map_or(&[][..], Vec::as_slice);
            let hw = log.len() as i64;
            let data: Vec<u8> = log.iter().skip(off.max(0) as usize).flatten().copied().collect();
            if full || !data.is_empty() {
                parts.push(
                    RespPartition::default()
                        .with_partition_index(p)
                        .with_high_watermark(hw)
                        .with_last_stable_offset(hw)
                        .with_records(Some(Bytes::from(data))),
                );
            }
        }
        let wait = !full && parts.is_empty();
        let topics = if parts.is_empty() {
            vec![]
        } else {
            vec![FetchableTopicResponse::default().with_topic(name(TOPIC)).with_partitions(parts)]
        };
        let resp = FetchResponse::default().with_session_id(self.session_id).with_responses(topics);
        if wait { TcpReply::Delayed(Duration::from_millis(30), frame(&resp)) } else { TcpReply::Frame(frame(&resp)) }
    }
}

/// Polls until `got` holds `n` records (10 s at most).
async fn until(c: &Consumer, n: usize, got: &mut Vec<(i32, i64)>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < n {
        assert!(tokio::time::Instant::now() < deadline, "only {got:?}");
        got.extend(c.poll(Duration::from_millis(100)).await.unwrap().iter().map(|r| (r.partition, r.offset)));
    }
}

#[tokio::test]
async fn the_fetcher_speaks_incremental_sessions_forgets_and_re_adds_partitions_and_closes_the_session() {
    let state = Arc::new(Mutex::new(SessionBroker::default()));
    {
        let mut s = state.lock().unwrap();
        for i in 0..3 {
            s.append(0, &format!("p0-{i}"));
        }
        s.append(1, "p1-0");
    }
    let st = state.clone();
    let b = broker(3, move |req, f| st.lock().unwrap().fetch(req, f)).await;
    let mut cfg = ConsumerConfig::new(b.addr()).fetch_max_wait(Duration::from_millis(50));
    cfg.client.retry_backoff = Duration::from_millis(20);
    let c = Consumer::new(cfg).await.unwrap();
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(TOPIC, p)).collect();
    c.assign(tps.clone()).unwrap();
    for tp in &tps {
        c.seek(tp, 0).unwrap();
    }
    let mut got: Vec<(i32, i64)> = Vec::new();
    until(&c, 4, &mut got).await;
    // Only partition 2 receives data from now on; it is never re-sent (its offset does not
    // change), so the broker's session alone makes these records arrive.
    for i in 0..3 {
        state.lock().unwrap().append(2, &format!("p2-{i}"));
        until(&c, 5 + i, &mut got).await;
    }
    // The broker loses the session: the consumer starts a new one and misses nothing.
    state.lock().unwrap().lose_session = true;
    tokio::time::sleep(Duration::from_millis(200)).await;
    state.lock().unwrap().append(0, "p0-3");
    until(&c, 8, &mut got).await;
    // Pause partition 1: forgotten; data written meanwhile arrives after the resume.
    let p1 = TopicPartition::new(TOPIC, 1);
    c.pause(std::slice::from_ref(&p1)).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    state.lock().unwrap().append(1, "p1-1");
    assert!(c.poll(Duration::from_millis(200)).await.unwrap().is_empty());
    c.resume(std::slice::from_ref(&p1)).unwrap();
    until(&c, 9, &mut got).await;
    // Seek partition 0 back: re-sent at its new offset.
    c.seek(&TopicPartition::new(TOPIC, 0), 1).unwrap();
    until(&c, 12, &mut got).await;

    let mut per: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o) in &got {
        per.entry(*p).or_default().push(*o);
    }
    assert_eq!(per[&0], vec![0, 1, 2, 3, 1, 2, 3]);
    assert_eq!(per[&1], vec![0, 1]);
    assert_eq!(per[&2], vec![0, 1, 2]);

    c.close().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state.lock().unwrap().closed.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no session close request");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = state.lock().unwrap();
    assert_eq!(s.closed, vec![s.session_id], "the live session is closed");
    let seen = &s.seen;
    // The first fetch is full and asks for a session.
    assert_eq!((seen[0].0, seen[0].1), (0, 0));
    assert_eq!(seen[0].2.len(), 3);
    let incremental = seen.iter().filter(|r| r.1 > 0).count();
    assert!(incremental * 2 > seen.len(), "mostly incremental: {incremental} of {}", seen.len());
    // Incremental fetches never re-send partition 2 while its offset stays (it only moves
    // when its data is consumed): at most once per record plus the re-adds.
    let p2_sent = seen.iter().filter(|r| r.1 > 0 && r.2.iter().any(|(p, _)| *p == 2)).count();
    assert!(p2_sent <= 8, "partition 2 sent {p2_sent} times in {} fetches", seen.len());
    assert!(seen.iter().any(|r| r.3.contains(&1)), "partition 1 was forgotten when paused");
    // Exactly one new session after the lost one (plus the first).
    assert_eq!(seen.iter().filter(|r| r.1 == 0).count(), 2, "{:?}", seen.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>());
}

/// A broker holding offsets 0..5 that, asked for offset 5, reports (KIP-320) that the log
/// diverged at offset 2 (epoch 3): records 2..5 were truncated by an unclean election.
async fn truncating_broker() -> TcpBroker {
    let records = Bytes::from(batch(0, &["a", "b", "c", "d", "e"]));
    broker(1, move |req, f| {
        let offset = fetch_offset(&f);
        if offset < 5 {
            return answer(req, &f, &records);
        }
        let t = &f.topics[0];
        let part = RespPartition::default()
            .with_partition_index(0)
            .with_high_watermark(2)
            .with_last_stable_offset(2)
            .with_log_start_offset(0)
            .with_diverging_epoch(
                kafka_protocol::messages::fetch_response::EpochEndOffset::default().with_epoch(3).with_end_offset(2),
            );
        let resp = FetchResponse::default()
            .with_responses(vec![FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(vec![part])]);
        TcpReply::Frame(encode_response::<FetchRequest>(req.header.correlation_id, req.header.request_api_version, &resp))
    })
    .await
}

#[tokio::test]
async fn detected_log_truncation_is_reported_when_reset_is_none() {
    let b = truncating_broker().await;
    let c = consumer(&b, |c| c.auto_offset_reset(super::OffsetReset::Error)).await;
    let (got, e) = poll_until_error(&c).await;
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    match &e {
        Error::LogTruncation { topic, partition: 0, position: 5, divergent_offset: 2, divergent_epoch: 3, .. } => {
            assert_eq!(topic, TOPIC)
        }
        other => panic!("expected LogTruncation, got {other}"),
    }
    assert!(e.to_string().contains("log truncation detected"), "{e}");
}

#[tokio::test]
async fn with_a_reset_policy_truncation_moves_back_to_the_divergence_point_never_skipping() {
    let b = truncating_broker().await;
    let c = consumer(&b, |c| c.auto_offset_reset(super::OffsetReset::Earliest)).await;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Offsets 0..5, then, after the divergence at 2, the records from 2 again.
    while got.len() < 8 {
        assert!(tokio::time::Instant::now() < deadline, "got {got:?}");
        got.extend(c.poll(Duration::from_millis(200)).await.unwrap().iter().map(|r| r.offset));
    }
    assert_eq!(&got[..5], &[0, 1, 2, 3, 4]);
    assert_eq!(got[5], 2, "consumption resumes at the divergence point: {got:?}");
}

#[tokio::test]
async fn commit_async_hands_an_error_from_before_the_request_out_of_its_future() {
    let b = broker(1, |req, f| answer(req, &f, &Bytes::new())).await;
    let c = consumer(&b, |c| c).await;
    // No group id: nothing is sent, and the future (not the call) says why.
    let e = c.commit_async(None).await.unwrap_err();
    assert!(e.to_string().contains("group id"), "{e}");
    c.close().await.unwrap();
    assert!(matches!(c.commit_async(None).await, Err(Error::Closed)));
}
