//! Exactly-once copy pipelines (`txn::ExactlyOncePipeline`) against the real broker: two
//! instances with a rebalance between them (single node), and on the 3-node cluster the
//! transaction coordinator's broker killed and restarted while one instance is killed
//! mid-transaction and replaced. Afterwards a read_committed consumer of the output sees
//! every input record exactly once, in input order per partition.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokafka::admin::{AdminClient, NewTopic};
use ferrokafka::consumer::{Consumer, ConsumerConfig, IsolationLevel, OffsetReset, TopicPartition};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::txn::ExactlyOncePipeline;
use tokio::task::JoinHandle;

use crate::common::*;

const PARTITIONS: i32 = 6;

/// Input values: "p<partition>-<i>" in order per partition, keyed by partition.
async fn fill(bootstrap: &str, topic: &str, per_partition: usize) {
    let producer = Producer::new(ProducerConfig::new(bootstrap)).await.unwrap();
    let mut acks = Vec::new();
    for i in 0..per_partition {
        for p in 0..PARTITIONS {
            acks.push(producer.send(ProducerRecord::new(topic).partition(p).value(format!("p{p}-{i}"))).await.unwrap());
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close(Duration::from_secs(30)).await.unwrap();
}

/// Everything committed in `topic`, per partition in offset order.
async fn read_committed(bootstrap: &str, topic: &str, expected: usize) -> BTreeMap<i32, Vec<String>> {
    let c = Consumer::new(
        ConsumerConfig::new(bootstrap)
            .auto_offset_reset(OffsetReset::Earliest)
            .isolation_level(IsolationLevel::ReadCommitted),
    )
    .await
    .unwrap();
    c.assign((0..PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect()).unwrap();
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while n < expected && std::time::Instant::now() < deadline {
        for r in c.poll(Duration::from_millis(500)).await.unwrap() {
            out.entry(r.partition).or_default().push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            n += 1;
        }
    }
    // Nothing more may come.
    for r in c.poll(Duration::from_secs(2)).await.unwrap() {
        out.entry(r.partition).or_default().push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
    }
    c.close().await.unwrap();
    out
}

/// Exactly once, in order: output partition p holds p's input values, each once, in order.
fn assert_exactly_once(out: &BTreeMap<i32, Vec<String>>, per_partition: usize) {
    for p in 0..PARTITIONS {
        let want: Vec<String> = (0..per_partition).map(|i| format!("p{p}-{i}")).collect();
        let got = out.get(&p).cloned().unwrap_or_default();
        if got != want {
            let dup = got.len() as i64 - want.len() as i64;
            let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
            panic!(
                "partition {p}: {} records, expected {} ({dup:+}); first difference at {first_diff:?}",
                got.len(),
                want.len()
            );
        }
    }
}

struct Instance {
    task: JoinHandle<ferrokafka::Result<()>>,
    stop: Arc<AtomicBool>,
    /// Pipelines rebuilt after a fatal error.
    #[allow(dead_code)]
    restarts: Arc<AtomicUsize>,
}

/// One pipeline instance copying `input` to `output` (same partition, same value).
/// `on_record` runs for every input record inside the transform (the test's hook to crash
/// an instance mid-transaction). Like a real application, the instance builds a new
/// pipeline (same transactional id) when the old one fails for good (fenced: for example
/// when a coordinator failover outlasted a transaction and the coordinator aborted it with
/// a new epoch); `restarts` counts those.
async fn instance(
    bootstrap: &str,
    group: &str,
    txn_id: &str,
    input: &str,
    output: &str,
    on_record: Arc<dyn Fn() + Send + Sync>,
) -> Instance {
    let stop = Arc::new(AtomicBool::new(false));
    let restarts = Arc::new(AtomicUsize::new(0));
    let (s, r) = (stop.clone(), restarts.clone());
    let (bootstrap, group, txn_id, input, output) =
        (bootstrap.to_owned(), group.to_owned(), txn_id.to_owned(), input.to_owned(), output.to_owned());
    let task = tokio::spawn(async move {
        loop {
            let pipeline = build(&bootstrap, &group, &txn_id, &input).await?;
            let result = async {
                while !s.load(Ordering::Acquire) {
                    pipeline
                        .run_once(|rec| {
                            on_record();
                            vec![ProducerRecord {
                                topic: output.clone(),
                                partition: Some(rec.partition),
                                key: rec.key.clone(),
                                value: rec.value.clone(),
                                ..Default::default()
                            }]
                        })
                        .await?;
                }
                Ok::<(), ferrokafka::Error>(())
            }
            .await;
            match result {
                Ok(()) => return pipeline.close().await,
                Err(e) if e.is_fatal() => {
                    eprintln!("pipeline {txn_id} failed for good ({e}); starting a new one");
                    r.fetch_add(1, Ordering::Relaxed);
                    drop(pipeline);
                }
                Err(e) => return Err(e),
            }
        }
    });
    Instance { task, stop, restarts }
}

async fn build(bootstrap: &str, group: &str, txn_id: &str, input: &str) -> ferrokafka::Result<ExactlyOncePipeline> {
    let consumer = Consumer::new(
        ConsumerConfig::new(bootstrap)
            .group_id(group)
            .isolation_level(IsolationLevel::ReadCommitted)
            .enable_auto_commit(false)
            .auto_offset_reset(OffsetReset::Earliest)
            .session_timeout(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_secs(1))
            .max_poll_records(200),
    )
    .await?;
    consumer.subscribe([input.to_owned()]).await?;
    let producer = Producer::new(ProducerConfig::new(bootstrap).transactional_id(txn_id)).await?;
    ExactlyOncePipeline::new(consumer, producer).await
}

impl Instance {
    async fn stop(self) {
        self.stop.store(true, Ordering::Release);
        tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("instance stops").unwrap().unwrap();
    }
}

async fn count_committed(bootstrap: &str, topic: &str) -> usize {
    let c = Consumer::new(ConsumerConfig::new(bootstrap).isolation_level(IsolationLevel::ReadCommitted)).await.unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect();
    let ends = c.end_offsets(&tps).await.unwrap();
    ends.values().sum::<i64>() as usize
}

#[tokio::test]
async fn eos_copy_with_two_instances_and_a_rebalance_is_exactly_once() {
    let bootstrap = single_bootstrap();
    let admin = single_admin().await;
    let (input, output) = (unique("eos-in"), unique("eos-out"));
    admin.create_topic(NewTopic::new(&input, PARTITIONS, 1)).await.unwrap();
    admin.create_topic(NewTopic::new(&output, PARTITIONS, 1)).await.unwrap();
    let per = 500;
    fill(&bootstrap, &input, per).await;
    let group = unique("eos-group");
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let count: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        s.fetch_add(1, Ordering::Relaxed);
    });
    let a = instance(&bootstrap, &group, &unique("eos-a"), &input, &output, count.clone()).await;
    // The second instance joins mid-stream: a rebalance between transactions.
    eventually("the first instance made progress", Duration::from_secs(60), || async {
        (seen.load(Ordering::Relaxed) >= 600).then_some(())
    })
    .await;
    let b = instance(&bootstrap, &group, &unique("eos-b"), &input, &output, count.clone()).await;
    let total = per * PARTITIONS as usize;
    // Committed output (the LSO counts control records too, so wait for >= total).
    eventually("all input copied", Duration::from_secs(120), || async {
        (count_committed(&bootstrap, &output).await >= total).then_some(())
    })
    .await;
    a.stop().await;
    b.stop().await;
    let out = read_committed(&bootstrap, &output, total).await;
    assert_exactly_once(&out, per);
}

/// The transaction coordinator of `txn_id`: the leader of its `__transaction_state`
/// partition (Kafka: abs(String.hashCode) % partitions).
async fn txn_coordinator(admin: &AdminClient, txn_id: &str) -> i32 {
    let mut h: i32 = 0;
    for c in txn_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(c as i32);
    }
    let h = if h == i32::MIN { 0 } else { h.abs() };
    let d = eventually("__transaction_state", Duration::from_secs(30), || async {
        admin.describe_topics(["__transaction_state"]).await.ok()?.pop()
    })
    .await;
    let p = h % d.partitions.len() as i32;
    d.partitions.iter().find(|x| x.partition == p).and_then(|x| x.leader).expect("a coordinator")
}

#[tokio::test]
async fn eos_copy_survives_a_coordinator_kill_and_an_instance_killed_mid_transaction() {
    let _faults = CLUSTER_FAULTS.lock().await;
    let bootstrap = cluster_bootstrap();
    let admin = cluster_admin().await;
    eventually("3 live brokers", Duration::from_secs(60), || async {
        (admin.describe_cluster().await.ok()?.brokers.len() == 3).then_some(())
    })
    .await;
    let (input, output) = (unique("eosc-in"), unique("eosc-out"));
    for t in [&input, &output] {
        admin.create_topic(NewTopic::new(t, PARTITIONS, 3)).await.unwrap();
        eventually("leaders with full ISR", Duration::from_secs(30), || async {
            let d = admin.describe_topics([t.as_str()]).await.ok()?.pop()?;
            d.partitions.iter().all(|p| p.leader.is_some() && p.isr.len() == 3).then_some(())
        })
        .await;
    }
    let per = 400;
    fill(&bootstrap, &input, per).await;
    let group = unique("eosc-group");
    let (txn_a, txn_b) = (unique("eosc-a"), unique("eosc-b"));
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let count: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        s.fetch_add(1, Ordering::Relaxed);
    });
    // B crashes inside its transform at its 150th record: a transaction is open (records
    // of it already sent), the task dies with its clients (no LeaveGroup, no EndTxn).
    let b_seen = Arc::new(AtomicUsize::new(0));
    let crashed = Arc::new(AtomicBool::new(false));
    let (bs, st, s2) = (b_seen.clone(), crashed.clone(), seen.clone());
    let crash: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        s2.fetch_add(1, Ordering::Relaxed);
        if bs.fetch_add(1, Ordering::Relaxed) == 150 {
            st.store(true, Ordering::Release);
            panic!("simulated crash of pipeline instance B mid-transaction");
        }
    });
    let a = instance(&bootstrap, &group, &txn_a, &input, &output, count.clone()).await;
    let b = instance(&bootstrap, &group, &txn_b, &input, &output, crash).await;
    eventually("both instances made progress", Duration::from_secs(90), || async {
        (seen.load(Ordering::Relaxed) >= 600).then_some(())
    })
    .await;
    // Kill A's transaction coordinator, then bring it back.
    let coordinator = txn_coordinator(&admin, &txn_a).await;
    cluster_ctl(&["kill", &coordinator.to_string()]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster_ctl(&["restart", &coordinator.to_string()]);
    // B crashed mid-transaction; replace it with the same transactional id:
    // init_transactions fences the dead one and aborts its open transaction.
    eventually("B crashed mid-transaction", Duration::from_secs(120), || async {
        crashed.load(Ordering::Acquire).then_some(())
    })
    .await;
    assert!(b.task.await.unwrap_err().is_panic());
    let b2 = instance(&bootstrap, &group, &txn_b, &input, &output, count.clone()).await;
    let total = per * PARTITIONS as usize;
    eventually("all input copied", Duration::from_secs(240), || async {
        (count_committed(&bootstrap, &output).await >= total).then_some(())
    })
    .await;
    a.stop().await;
    b2.stop().await;
    let out = read_committed(&bootstrap, &output, total).await;
    assert_exactly_once(&out, per);
    eventually("3 live brokers", Duration::from_secs(60), || async {
        (admin.describe_cluster().await.ok()?.brokers.len() == 3).then_some(())
    })
    .await;
}
