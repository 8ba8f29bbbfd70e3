//! The producer against a real single node, checked with the real Java consumer.

use std::collections::HashMap;
use std::time::Duration;

use ferrokafka::admin::NewTopic;
use ferrokafka::producer::{Acks, Compression, Producer, ProducerConfig, ProducerRecord};
use ferrokafka::{Error, ErrorCode};

use crate::common::*;

async fn topic(partitions: i32) -> String {
    topic_with(partitions, &[]).await
}

async fn topic_with(partitions: i32, configs: &[(&str, &str)]) -> String {
    let admin = single_admin().await;
    let name = unique("producer");
    let mut t = NewTopic::new(&name, partitions, 1);
    for (k, v) in configs {
        t = t.config(*k, *v);
    }
    admin.create_topic(t).await.unwrap();
    name
}

fn config() -> ProducerConfig {
    ProducerConfig::new(single_bootstrap())
}

#[tokio::test]
async fn every_codec_round_trips_through_the_java_consumer() {
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let topic = topic(3).await;
        let producer = Producer::new(config().compression(codec)).await.unwrap();
        let n = 300;
        let mut futures = Vec::new();
        for i in 0..n {
            futures.push(producer.send(sample(&topic, i)).await.unwrap());
        }
        let mut sent: HashMap<(i32, i64), usize> = HashMap::new();
        for (i, f) in futures.into_iter().enumerate() {
            let m = f.await.unwrap_or_else(|e| panic!("{codec:?} record {i}: {e}"));
            assert_eq!(&*m.topic, topic.as_str());
            assert_eq!(m.timestamp, 1_700_000_000_000 + i as i64);
            assert!(sent.insert((m.partition, m.offset), i).is_none(), "offset reported twice");
        }
        producer.close(Duration::from_secs(10)).await.unwrap();

        let got = java_consume(&single_bootstrap(), &topic, n, "read_uncommitted");
        assert_eq!(got.len(), n);
        for r in got {
            let i = *sent.get(&(r.partition, r.offset)).unwrap_or_else(|| panic!("{codec:?}: unexpected {r:?}"));
            let want = sample(&topic, i);
            assert_eq!(r.key.as_deref(), want.key.as_deref(), "{codec:?} key of record {i}");
            assert_eq!(r.value.as_deref(), want.value.as_deref(), "{codec:?} value of record {i}");
            assert_eq!(r.timestamp, want.timestamp.unwrap());
            assert!(!r.log_append_time);
            let headers: Vec<(String, Option<Vec<u8>>)> =
                want.headers.iter().map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec()))).collect();
            assert_eq!(r.headers, headers, "{codec:?} headers of record {i}");
        }
    }
}

#[tokio::test]
async fn keyed_records_land_where_the_java_client_puts_them() {
    let mut keys: Vec<String> = ["21", "foobar", "abc", "a-little-bit-longer-string", ""].map(String::from).to_vec();
    keys.extend((0..60).map(|i| format!("customer-{i}-{}", i * 7919)));
    for partitions in [6, 10] {
        let topic = topic(partitions).await;
        let producer = Producer::new(config()).await.unwrap();
        let mut ours = Vec::new();
        for k in &keys {
            let f = producer.send(ProducerRecord::new(&topic).key(k.clone()).value("v")).await.unwrap();
            ours.push(f.await.unwrap().partition);
        }
        let mut args = vec!["produce-keyed".to_string(), single_bootstrap(), topic.clone()];
        args.extend(keys.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let java: Vec<i32> = java_tool(&args)
            .iter()
            .map(|l| l.rsplit('\t').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ours, java, "partitions for {partitions} partitions differ from the Java client");
    }
}

#[tokio::test]
async fn acks_zero_one_and_all_all_deliver() {
    for acks in [Acks::Zero, Acks::Leader, Acks::All] {
        let topic = topic(2).await;
        // acks=0 has no delivery guarantee: a new partition the metadata already names but
        // the broker does not serve yet (seen under load) drops what it is sent without a
        // word. Write one acknowledged record to each partition first, so the records under
        // test meet partitions that take writes; they are not counted below.
        let ready = Producer::new(config().acks(Acks::Leader).enable_idempotence(false)).await.unwrap();
        for p in 0..2 {
            ready.send(ProducerRecord::new(&topic).partition(p).value("ready")).await.unwrap().await.unwrap();
        }
        ready.close(Duration::from_secs(5)).await.unwrap();
        let cfg = config().acks(acks).enable_idempotence(acks == Acks::All);
        let producer = Producer::new(cfg).await.unwrap();
        let mut fs = Vec::new();
        for i in 0..100 {
            fs.push(producer.send(ProducerRecord::new(&topic).partition(i % 2).value(format!("{i}"))).await.unwrap());
        }
        for f in fs {
            let m = f.await.unwrap();
            if acks == Acks::Zero {
                assert_eq!(m.offset, -1, "acks=0 reports no offset");
            } else {
                assert!(m.offset >= 0);
            }
        }
        producer.flush().await.unwrap();
        let got = java_consume(&single_bootstrap(), &topic, 102, "read_uncommitted");
        let mut values: Vec<i32> = got
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
            .filter(|v| v != "ready")
            .map(|v| v.parse().unwrap())
            .collect();
        values.sort();
        assert_eq!(values, (0..100).collect::<Vec<_>>(), "{acks:?}");
    }
}

#[tokio::test]
async fn idempotent_producer_gets_an_id_and_keeps_order_per_partition() {
    let topic = topic(1).await;
    let producer = Producer::new(config().linger(Duration::from_millis(1)).batch_size(512)).await.unwrap();
    let (pid, epoch) = producer.producer_id_and_epoch().expect("idempotence is on by default");
    assert!(pid >= 0 && epoch >= 0);
    let mut fs = Vec::new();
    for i in 0..2000 {
        fs.push(producer.send(ProducerRecord::new(&topic).value(format!("{i:05}"))).await.unwrap());
    }
    let offsets: Vec<i64> = futures::future::join_all(fs).await.into_iter().map(|r| r.unwrap().offset).collect();
    assert_eq!(offsets, (0..2000).collect::<Vec<i64>>(), "send order = offset order");
}

#[tokio::test]
async fn log_append_time_topics_report_the_broker_time() {
    let topic = topic_with(1, &[("message.timestamp.type", "LogAppendTime")]).await;
    let producer = Producer::new(config()).await.unwrap();
    let m = producer.send(ProducerRecord::new(&topic).value("v").timestamp(1000)).await.unwrap().await.unwrap();
    assert!(m.timestamp > 1_600_000_000_000, "broker append time, not the record's 1000: {m:?}");
    let got = java_consume(&single_bootstrap(), &topic, 1, "read_uncommitted");
    assert!(got[0].log_append_time);
    assert_eq!(got[0].timestamp, m.timestamp);
}

#[tokio::test]
async fn oversized_batches_are_split_and_an_oversized_record_fails_alone() {
    // The broker accepts batches of at most 4000 bytes; the producer builds 64 KiB batches.
    let topic = topic_with(1, &[("max.message.bytes", "4000")]).await;
    let producer = Producer::new(config().batch_size(64 * 1024).linger(Duration::from_millis(50))).await.unwrap();
    let mut fs = Vec::new();
    for i in 0..200 {
        let value = if i == 100 { "y".repeat(6000) } else { format!("{i:03}-{}", "x".repeat(90)) };
        fs.push(producer.send(ProducerRecord::new(&topic).value(value)).await.unwrap());
    }
    let results: Vec<_> = futures::future::join_all(fs).await;
    for (i, r) in results.iter().enumerate() {
        if i == 100 {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.code(), Some(ErrorCode::MessageTooLarge), "{e}");
            assert!(e.to_string().contains(&topic), "{e}");
        } else {
            assert!(r.is_ok(), "record {i}: {:?}", r.as_ref().unwrap_err());
        }
    }
    let got = java_consume(&single_bootstrap(), &topic, 199, "read_uncommitted");
    let order: Vec<String> = got.iter().map(|r| String::from_utf8_lossy(&r.value.clone().unwrap()[..3]).to_string()).collect();
    let want: Vec<String> = (0..200).filter(|i| *i != 100).map(|i| format!("{i:03}")).collect();
    assert_eq!(order, want, "split batches keep the order");
}

#[tokio::test]
async fn bad_input_gives_clear_errors_and_leaves_other_records_alone() {
    let topic = topic(2).await;
    let producer = Producer::new(config().max_block(Duration::from_secs(2)).max_request_size(10_000)).await.unwrap();
    let good = producer.send(ProducerRecord::new(&topic).value("before")).await.unwrap();

    let e = producer.send(ProducerRecord::new("").value("v")).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = producer.send(ProducerRecord::new("bad/name").value("v")).await.unwrap_err();
    assert!(e.to_string().contains("invalid topic name"), "{e}");
    let e = producer.send(ProducerRecord::new(&topic).partition(2).value("v")).await.unwrap_err();
    assert!(e.to_string().contains("partition 2 is not valid") && e.to_string().contains("2 partitions"), "{e}");
    let e = producer.send(ProducerRecord::new(&topic).value(vec![0u8; 20_000])).await.unwrap_err();
    assert!(e.to_string().contains("max_request_size"), "{e}");
    let missing = unique("does-not-exist");
    let t = std::time::Instant::now();
    let e = producer.send(ProducerRecord::new(&missing).value("v")).await.unwrap_err();
    assert!(e.is_retriable() && e.to_string().contains(&missing) && e.to_string().contains("max_block"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "bounded by max_block");

    let after = producer.send(ProducerRecord::new(&topic).value("after")).await.unwrap();
    assert!(good.await.is_ok());
    assert!(after.await.is_ok());
    producer.close(Duration::from_secs(5)).await.unwrap();
    let e = producer.send(ProducerRecord::new(&topic).value("closed")).await.unwrap_err();
    assert!(matches!(e, Error::Closed), "{e}");
}

#[tokio::test]
async fn invalid_producer_configs_fail_at_build() {
    let e = Producer::new(config().acks(Acks::Leader)).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)) && e.to_string().contains("acks"), "{e}");
    let e = Producer::new(config().max_in_flight(6)).await.unwrap_err();
    assert!(e.to_string().contains("max_in_flight"), "{e}");
    let e = Producer::new(config().buffer_memory(10).batch_size(100)).await.unwrap_err();
    assert!(e.to_string().contains("buffer_memory"), "{e}");
    let e = Producer::new(config().delivery_timeout(Duration::from_secs(1))).await.unwrap_err();
    assert!(e.to_string().contains("delivery_timeout"), "{e}");
}

#[tokio::test]
async fn keyless_records_stick_to_a_partition_per_batch() {
    let topic = topic(6).await;
    let producer = Producer::new(config().batch_size(1000).linger(Duration::from_millis(100))).await.unwrap();
    let mut fs = Vec::new();
    for i in 0..600 {
        fs.push(producer.send(ProducerRecord::new(&topic).value(format!("{i:04}-{}", "z".repeat(40)))).await.unwrap());
    }
    let parts: Vec<i32> = futures::future::join_all(fs).await.into_iter().map(|r| r.unwrap().partition).collect();
    // Runs of the same partition, each about a batch (1000 bytes ~ 15 records), spread over
    // several partitions.
    let switches = parts.windows(2).filter(|w| w[0] != w[1]).count();
    let distinct: std::collections::BTreeSet<i32> = parts.iter().copied().collect();
    assert!((10..=100).contains(&switches), "{switches} switches");
    assert!(distinct.len() >= 4, "{distinct:?}");
}

/// A partitioner that sends keys starting with "vip" to partition 0 and leaves the rest
/// to the built-in partitioner.
struct VipFirst;

impl ferrokafka::producer::Partitioner for VipFirst {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, _value: Option<&[u8]>, _count: i32) -> Option<i32> {
        key.filter(|k| k.starts_with(b"vip")).map(|_| 0)
    }
}

#[tokio::test]
async fn a_custom_partitioner_decides_and_can_defer_to_the_built_in_one() {
    let topic = topic(4).await;
    let producer = Producer::new(config().partitioner(std::sync::Arc::new(VipFirst))).await.unwrap();
    let mut vip = Vec::new();
    let mut other = Vec::new();
    for i in 0..40 {
        vip.push(producer.send(ProducerRecord::new(&topic).key(format!("vip-{i}")).value("v")).await.unwrap());
        other.push((i, producer.send(ProducerRecord::new(&topic).key(format!("key-{i}")).value("v")).await.unwrap()));
    }
    producer.flush().await.unwrap();
    for f in vip {
        assert_eq!(f.await.unwrap().partition, 0);
    }
    for (i, f) in other {
        let want = ferrokafka::producer::partition_for_key(format!("key-{i}").as_bytes(), 4);
        assert_eq!(f.await.unwrap().partition, want, "deferred records use the key hash");
    }
}

#[tokio::test]
async fn flush_sends_lingering_records_at_once() {
    let topic = topic(1).await;
    // A linger far longer than the test: only flush can send these.
    let producer = Producer::new(config().linger(Duration::from_secs(30)).delivery_timeout(Duration::from_secs(120))).await.unwrap();
    let f = producer.send(ProducerRecord::new(&topic).value("lingering")).await.unwrap();
    let t = std::time::Instant::now();
    producer.flush().await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "flush did not wait for linger");
    assert_eq!(f.await.unwrap().offset, 0);
}
