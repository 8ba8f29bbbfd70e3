//! The consumer against a real single node: records from ferrokafka's producer and from the
//! Java producer, positions and seeks, committed offsets, read_committed vs the Java
//! producer's transactions.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use ferrokafka::consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, OffsetAndMetadata, OffsetReset, TimestampType,
    TopicPartition,
};
use ferrokafka::producer::{Compression, Producer, ProducerConfig, ProducerRecord};
use ferrokafka::Error;

use crate::common::*;

async fn topic(partitions: i32) -> String {
    single_topic("consumer", partitions).await
}

fn config() -> ConsumerConfig {
    ConsumerConfig::new(single_bootstrap()).auto_offset_reset(OffsetReset::Earliest)
}


/// Polls until exactly `n` records arrived (failing after 20 s), then checks for 300 ms that
/// no more arrive.
async fn consume_exactly(c: &Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.len() < n {
        assert!(std::time::Instant::now() < deadline, "only {} of {n} records arrived", got.len());
        got.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    let extra = c.poll(Duration::from_millis(300)).await.unwrap();
    assert!(extra.is_empty(), "{} records more than the {n} expected, first {:?}", extra.len(), extra[0]);
    got
}


#[tokio::test]
async fn records_from_our_producer_arrive_exactly_once_in_order_with_every_codec() {
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let topic = topic(3).await;
        let producer = Producer::new(ProducerConfig::new(single_bootstrap()).compression(codec)).await.unwrap();
        let n = 600;
        let mut fs = Vec::new();
        for i in 0..n {
            fs.push(producer.send(sample(&topic, i).partition((i % 3) as i32)).await.unwrap());
        }
        let mut sent: HashMap<(i32, i64), usize> = HashMap::new();
        for (i, f) in fs.into_iter().enumerate() {
            let m = f.await.unwrap();
            sent.insert((m.partition, m.offset), i);
        }
        producer.close(Duration::from_secs(10)).await.unwrap();

        // Small fetches so that several round trips and partial batches are exercised.
        let consumer = Consumer::new(config().max_partition_fetch_bytes(2048).max_poll_records(77)).await.unwrap();
        consumer.assign(tps(&topic, 3)).unwrap();
        let got = consume_exactly(&consumer, n).await;
        let mut last: HashMap<i32, i64> = HashMap::new();
        for r in &got {
            assert_eq!(&*r.topic, topic.as_str());
            let prev = last.insert(r.partition, r.offset);
            assert!(prev.is_none_or(|p| p + 1 == r.offset), "{codec:?}: partition {} jumped {prev:?} -> {}", r.partition, r.offset);
            let i = sent[&(r.partition, r.offset)];
            let want = sample(&topic, i).partition((i % 3) as i32);
            assert_eq!(r.key, want.key, "{codec:?} key of record {i}");
            assert_eq!(r.value, want.value, "{codec:?} value of record {i}");
            assert_eq!(r.headers, want.headers, "{codec:?} headers of record {i}");
            assert_eq!(r.timestamp, want.timestamp.unwrap());
            assert_eq!(r.timestamp_type, TimestampType::CreateTime);
            assert!(r.leader_epoch.is_some_and(|e| e >= 0));
        }
        for p in 0..3 {
            let tp = TopicPartition::new(&topic, p);
            assert_eq!(consumer.position(&tp).await.unwrap(), 200);
            assert_eq!(consumer.high_watermark(&tp), Some(200));
            assert_eq!(consumer.lag(&tp), Some(0));
        }
        consumer.close().await.unwrap();
        assert!(matches!(consumer.poll(Duration::ZERO).await, Err(Error::Closed)));
    }
}

#[tokio::test]
async fn records_from_the_java_producer_decode_with_every_codec() {
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = topic(1).await;
        let n = 50;
        java_tool(&["produce", &single_bootstrap(), &topic, codec, &n.to_string()]);
        let consumer = Consumer::new(config()).await.unwrap();
        consumer.assign(tps(&topic, 1)).unwrap();
        let got = consume_exactly(&consumer, n).await;
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            let key = (i % 5 != 4).then(|| Bytes::from(format!("k-{i}")));
            let value = (i % 7 != 6).then(|| Bytes::from(format!("v-{i}")));
            assert_eq!(r.key, key, "{codec} key {i}");
            assert_eq!(r.value, value, "{codec} value {i}");
            let hs: Vec<(String, Option<Bytes>)> = r.headers.iter().map(|h| (h.key, h.value)).collect();
            let (a, b) = (Bytes::from(format!("a{i}")), Bytes::from(format!("b{i}")));
            let want = vec![("h1".to_string(), Some(a)), ("h1".to_string(), Some(b)), ("hnull".to_string(), None)];
            assert_eq!(hs, want, "{codec} headers {i}");
        }
        // The same records as the Java consumer sees them.
        let java = java_consume(&single_bootstrap(), &topic, n, "read_uncommitted");
        for (j, r) in java.iter().zip(&got) {
            assert_eq!((j.offset, j.timestamp), (r.offset, r.timestamp));
            assert_eq!(j.value.as_deref(), r.value.as_deref());
        }
    }
}

#[tokio::test]
async fn seek_beginning_end_offsets_for_times_and_position() {
    let topic = topic(1).await;
    let producer = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    for i in 0..20i64 {
        producer
            .send(ProducerRecord::new(&topic).value(format!("{i}")).timestamp(1_000_000 + i * 10))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let tp = TopicPartition::new(&topic, 0);
    // Default reset is latest: the position is the end.
    let consumer = Consumer::new(ConsumerConfig::new(single_bootstrap())).await.unwrap();
    consumer.assign(vec![tp.clone()]).unwrap();
    assert_eq!(consumer.position(&tp).await.unwrap(), 20);
    assert!(consumer.poll(Duration::from_millis(300)).await.unwrap().is_empty());

    consumer.seek(&tp, 7).unwrap();
    assert_eq!(consumer.position(&tp).await.unwrap(), 7);
    let r = consumer.recv().await.unwrap();
    assert_eq!((r.offset, r.value.as_deref()), (7, Some(&b"7"[..])));
    assert_eq!(consumer.position(&tp).await.unwrap(), 8);

    consumer.seek_to_beginning(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(consumer.position(&tp).await.unwrap(), 0);
    assert_eq!(consumer.recv().await.unwrap().offset, 0);

    consumer.seek_to_end(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(consumer.position(&tp).await.unwrap(), 20);

    let t = consumer.offsets_for_times(&[(tp.clone(), 1_000_055)]).await.unwrap();
    let o = t[&tp].expect("a record at or after the timestamp");
    assert_eq!((o.offset, o.timestamp), (6, 1_000_060));
    let t = consumer.offsets_for_times(&[(tp.clone(), 9_000_000)]).await.unwrap();
    assert_eq!(t[&tp], None);
    assert_eq!(consumer.beginning_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp], 0);
    assert_eq!(consumer.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp], 20);

    // The stream adapter from a seek.
    use futures::StreamExt;
    consumer.seek(&tp, 17).unwrap();
    let v: Vec<i64> = consumer.stream().take(3).map(|r| r.unwrap().offset).collect().await;
    assert_eq!(v, vec![17, 18, 19]);

    // Unassigned partitions and bad offsets are argument errors.
    let other = TopicPartition::new(&topic, 5);
    assert!(matches!(consumer.seek(&other, 0), Err(Error::InvalidArgument(_))));
    assert!(matches!(consumer.seek(&tp, -3), Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn out_of_range_with_reset_none_is_a_clear_error_and_earliest_resets() {
    let topic = topic(1).await;
    let producer = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    for i in 0..5 {
        producer.send(ProducerRecord::new(&topic).value(format!("{i}"))).await.unwrap().await.unwrap();
    }
    let tp = TopicPartition::new(&topic, 0);
    let none = Consumer::new(ConsumerConfig::new(single_bootstrap()).auto_offset_reset(OffsetReset::Error)).await.unwrap();
    none.assign(vec![tp.clone()]).unwrap();
    let e = none.poll(Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(e, Error::NoOffsetForPartition { partition: 0, .. }), "{e}");
    none.seek(&tp, 1000).unwrap();
    let e = none.poll(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code(), Some(ferrokafka::ErrorCode::OffsetOutOfRange), "{e}");
    assert!(e.to_string().contains(&format!("{topic}-0")) && e.to_string().contains("1000"), "{e}");
    none.seek(&tp, 3).unwrap();
    assert_eq!(none.recv().await.unwrap().offset, 3);

    let earliest = Consumer::new(config()).await.unwrap();
    earliest.assign(vec![tp.clone()]).unwrap();
    earliest.seek(&tp, 1000).unwrap();
    let got = consume_exactly(&earliest, 5).await;
    assert_eq!(got[0].offset, 0);
}

#[tokio::test]
async fn pause_and_resume() {
    let topic = topic(2).await;
    let producer = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    for i in 0..10 {
        producer.send(ProducerRecord::new(&topic).partition(i % 2).value("v")).await.unwrap().await.unwrap();
    }
    let consumer = Consumer::new(config()).await.unwrap();
    let all = tps(&topic, 2);
    consumer.assign(all.clone()).unwrap();
    consumer.pause(&all[1..]).unwrap();
    assert_eq!(consumer.paused(), vec![all[1].clone()]);
    let got = consume_exactly(&consumer, 5).await;
    assert!(got.iter().all(|r| r.partition == 0));
    consumer.resume(&all[1..]).unwrap();
    let got = consume_exactly(&consumer, 5).await;
    assert!(got.iter().all(|r| r.partition == 1));
}

#[tokio::test]
async fn commit_and_committed_round_trip_without_membership() {
    let topic = topic(2).await;
    let producer = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    for i in 0..10 {
        producer.send(ProducerRecord::new(&topic).partition(i % 2).value("v")).await.unwrap().await.unwrap();
    }
    let group = unique("group");
    let all = tps(&topic, 2);
    // Auto-commit off: this test checks exactly what its own commits store.
    let consumer = Consumer::new(config().group_id(&group).enable_auto_commit(false)).await.unwrap();
    assert!(consumer.committed(&all).await.unwrap().is_empty());
    consumer.assign(all.clone()).unwrap();
    consume_exactly(&consumer, 10).await;
    consumer.commit(None).await.unwrap();
    let c = consumer.committed(&all).await.unwrap();
    assert_eq!(c[&all[0]].offset, 5);
    assert_eq!(c[&all[1]].offset, 5);
    assert!(c[&all[0]].leader_epoch.is_some());

    let mut explicit = BTreeMap::new();
    explicit.insert(all[0].clone(), OffsetAndMetadata { offset: 2, leader_epoch: None, metadata: "note".into() });
    consumer.commit_async(Some(explicit)).await.unwrap();
    let c = consumer.committed(&all).await.unwrap();
    assert_eq!((c[&all[0]].offset, c[&all[0]].metadata.as_str()), (2, "note"));

    // A new consumer of the group starts at the committed offsets.
    let next = Consumer::new(ConsumerConfig::new(single_bootstrap()).group_id(&group)).await.unwrap();
    next.assign(all.clone()).unwrap();
    let got = consume_exactly(&next, 3).await;
    assert!(got.iter().all(|r| r.partition == 0 && r.offset >= 2));

    // Without a group id committing is an argument error.
    let lone = Consumer::new(config()).await.unwrap();
    assert!(matches!(lone.commit(None).await, Err(Error::InvalidArgument(_))));
}

fn values(rs: &[ConsumerRecord]) -> Vec<String> {
    let mut v: Vec<String> = rs.iter().map(|r| String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap()).collect();
    v.sort();
    v
}

fn plan_values(plan: &str, keep: impl Fn(char) -> bool) -> Vec<String> {
    let mut v = Vec::new();
    for (s, step) in plan.split(',').enumerate() {
        let kind = step.chars().next().unwrap();
        let n: usize = step[1..].parse().unwrap();
        if keep(kind) {
            v.extend((0..n).map(|j| format!("{kind}{s}-{j}")));
        }
    }
    v.sort();
    v
}

#[tokio::test]
async fn read_committed_filters_the_java_producers_transactions_like_the_java_consumer() {
    let topic = topic(2).await;
    let plan = "c3,a2,c1,a4,c2";
    java_tool(&["txn-produce", &single_bootstrap(), &topic, &unique("txn"), plan]);
    let committed = plan_values(plan, |k| k == 'c');
    let everything = plan_values(plan, |_| true);

    let rc = Consumer::new(config().isolation_level(IsolationLevel::ReadCommitted)).await.unwrap();
    rc.assign(tps(&topic, 2)).unwrap();
    let got = consume_exactly(&rc, committed.len()).await;
    assert_eq!(values(&got), committed);
    let java = java_consume(&single_bootstrap(), &topic, committed.len(), "read_committed");
    let mut ours: Vec<(i32, i64)> = got.iter().map(|r| (r.partition, r.offset)).collect();
    let mut theirs: Vec<(i32, i64)> = java.iter().map(|r| (r.partition, r.offset)).collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "read_committed: same records as the Java consumer");
    // Positions end past the last commit marker.
    for tp in tps(&topic, 2) {
        assert_eq!(Some(rc.position(&tp).await.unwrap()), rc.high_watermark(&tp));
    }

    let ru = Consumer::new(config()).await.unwrap();
    ru.assign(tps(&topic, 2)).unwrap();
    assert_eq!(values(&consume_exactly(&ru, everything.len()).await), everything);
}

#[tokio::test]
async fn a_fetch_of_only_aborted_records_returns_nothing_and_moves_on() {
    let topic = topic(1).await;
    java_tool(&["txn-produce", &single_bootstrap(), &topic, &unique("txn"), "a5"]);
    let rc = Consumer::new(config().isolation_level(IsolationLevel::ReadCommitted)).await.unwrap();
    let tp = TopicPartition::new(&topic, 0);
    rc.assign(vec![tp.clone()]).unwrap();
    assert!(rc.poll(Duration::from_secs(2)).await.unwrap().is_empty());
    assert_eq!(rc.position(&tp).await.unwrap(), 6, "past 5 aborted records and the marker");
}

#[tokio::test]
async fn an_open_transaction_holds_read_committed_at_the_last_stable_offset() {
    let topic = topic(1).await;
    let bootstrap = single_bootstrap();
    let script = format!("{}/scripts/java-tool.sh", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("bash")
        .arg(&script)
        .args(["txn-produce", &bootstrap, &topic, &unique("txn"), "c2,o3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn java-tool");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // COMMITTED, then OPEN once the open transaction's records are written.
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("OPEN") {
        let l = lines.next().expect("java-tool ended early").unwrap();
        seen.push(l);
    }

    let tp = TopicPartition::new(&topic, 0);
    let rc = Consumer::new(config().isolation_level(IsolationLevel::ReadCommitted)).await.unwrap();
    rc.assign(vec![tp.clone()]).unwrap();
    let got = consume_exactly(&rc, 2).await;
    assert_eq!(values(&got), vec!["c0-0", "c0-1"]);
    assert_eq!(rc.position(&tp).await.unwrap(), 3, "held at the last stable offset (the open transaction's start)");
    assert_eq!(rc.last_stable_offset(&tp), Some(3));
    assert_eq!(rc.lag(&tp), Some(0));

    let ru = Consumer::new(config()).await.unwrap();
    ru.assign(vec![tp.clone()]).unwrap();
    let got = consume_exactly(&ru, 5).await;
    assert_eq!(values(&got), vec!["c0-0", "c0-1", "o1-0", "o1-1", "o1-2"]);

    drop(child.stdin.take()); // EOF: the tool halts, leaving the transaction open
    let _ = child.wait();
}

/// Sends `n` records `p<partition>-<i>` (i from `from`) to `partition` and waits for them.
#[cfg(feature = "test-hooks")]
async fn produce_to(producer: &Producer, topic: &str, partition: i32, from: usize, n: usize) {
    let mut fs = Vec::new();
    for i in from..from + n {
        fs.push(producer.send(ProducerRecord::new(topic).partition(partition).value(format!("p{partition}-{i}"))).await.unwrap());
    }
    for f in fs {
        f.await.unwrap();
    }
}

/// KIP-227 against the real broker: one session per broker, kept (same id, epoch rising)
/// while only one partition receives data, partitions paused (forgotten) and resumed
/// (re-added) and seeked (re-sent) lose and repeat nothing. Reads the sessions through
/// `Consumer::fetch_sessions`, a hook of the unstable `test-hooks` feature (scripts/test.sh
/// builds the integration tests with it).
#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn incremental_fetch_sessions_keep_every_partition_flowing() {
    let topic = topic(3).await;
    let producer = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    for p in 0..3 {
        produce_to(&producer, &topic, p, 0, 10).await;
    }
    let consumer = Consumer::new(config().fetch_max_wait(Duration::from_millis(100))).await.unwrap();
    let all = tps(&topic, 3);
    consumer.assign(all.clone()).unwrap();
    let mut got = consume_exactly(&consumer, 30).await;
    let sessions = consumer.fetch_sessions();
    assert_eq!(sessions.len(), 1, "one broker, one session: {sessions:?}");
    let (&broker, &(session_id, epoch)) = sessions.iter().next().unwrap();
    assert!(session_id != 0 && epoch >= 1, "{sessions:?}");

    // Only partition 2 receives data now, in rounds; partitions 0 and 1 sit unchanged in the
    // session and are not re-sent.
    for round in 0..5 {
        produce_to(&producer, &topic, 2, 10 + round * 7, 7).await;
        let rs = consume_exactly(&consumer, 7).await;
        assert!(rs.iter().all(|r| r.partition == 2), "round {round}");
        got.extend(rs);
    }
    let (id2, epoch2) = consumer.fetch_sessions()[&broker];
    assert_eq!(id2, session_id, "the session survived: every incremental fetch was accepted");
    assert!(epoch2 > epoch + 5, "the epoch rose with each fetch: {epoch} -> {epoch2}");

    // Pause partition 0 (forgotten), write to 0 and 1: only 1 arrives; resume: 0 arrives.
    consumer.pause(&all[..1]).unwrap();
    produce_to(&producer, &topic, 0, 10, 4).await;
    produce_to(&producer, &topic, 1, 10, 4).await;
    let rs = consume_exactly(&consumer, 4).await;
    assert!(rs.iter().all(|r| r.partition == 1));
    got.extend(rs);
    consumer.resume(&all[..1]).unwrap();
    let rs = consume_exactly(&consumer, 4).await;
    assert!(rs.iter().all(|r| r.partition == 0));
    got.extend(rs);

    // Seek partition 1 back to 5: its records from 5 again, once.
    consumer.seek(&all[1], 5).unwrap();
    let again = consume_exactly(&consumer, 9).await;
    assert!(again.iter().all(|r| r.partition == 1));
    assert_eq!(again.iter().map(|r| r.offset).collect::<Vec<_>>(), (5..14).collect::<Vec<i64>>());

    // Every partition in order, nothing lost or repeated before the seek.
    for p in 0..3 {
        let offs: Vec<i64> = got.iter().filter(|r| r.partition == p).map(|r| r.offset).collect();
        let n = [14, 14, 45][p as usize];
        assert_eq!(offs, (0..n).collect::<Vec<i64>>(), "partition {p}");
        let vals: Vec<String> = got
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(vals, (0..n).map(|i| format!("p{p}-{i}")).collect::<Vec<_>>());
    }
    assert_eq!(consumer.fetch_sessions()[&broker].0, session_id, "still the first session");
    consumer.close().await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
}
