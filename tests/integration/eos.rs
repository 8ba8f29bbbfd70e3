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

use crate::cluster::{all_three_up, drop_topic, replicated_topic};
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
    read_committed_within(bootstrap, topic, expected, Duration::from_secs(120)).await
}

/// As `read_committed`, waiting at most `wait` for `expected` records.
async fn read_committed_within(bootstrap: &str, topic: &str, expected: usize, wait: Duration) -> BTreeMap<i32, Vec<String>> {
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
    let deadline = std::time::Instant::now() + wait;
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
    if let Some(m) = exactly_once_mismatch(out, per_partition) {
        panic!("{m}");
    }
}

/// What breaks "exactly once, in order" in `out` (every partition), or `None`.
fn exactly_once_mismatch(out: &BTreeMap<i32, Vec<String>>, per_partition: usize) -> Option<String> {
    let mut problems = Vec::new();
    for p in 0..PARTITIONS {
        let want: Vec<String> = (0..per_partition).map(|i| format!("p{p}-{i}")).collect();
        let got = out.get(&p).cloned().unwrap_or_default();
        if got != want {
            let dup = got.len() as i64 - want.len() as i64;
            let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for v in &got {
                *counts.entry(v.as_str()).or_default() += 1;
            }
            let missing: Vec<&String> = want.iter().filter(|v| !counts.contains_key(v.as_str())).collect();
            let duplicated = counts.values().filter(|n| **n > 1).count();
            problems.push(format!(
                "partition {p}: {} records, expected {} ({dup:+}); first difference at {first_diff:?}; \
                 {} missing (first {:?}), {duplicated} duplicated",
                got.len(),
                want.len(),
                missing.len(),
                missing.first()
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("\n"))
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
    build_with(bootstrap, group, txn_id, input, 200, ferrokafka::txn::PipelineConfig::default()).await
}

/// A pipeline's consumer (read_committed, manual commits, from the earliest offset,
/// `max_poll` records per poll, so per transaction) and transactional producer.
async fn build_with(
    bootstrap: &str,
    group: &str,
    txn_id: &str,
    input: &str,
    max_poll: usize,
    cfg: ferrokafka::txn::PipelineConfig,
) -> ferrokafka::Result<ExactlyOncePipeline> {
    let consumer = Consumer::new(
        ConsumerConfig::new(bootstrap)
            .group_id(group)
            .isolation_level(IsolationLevel::ReadCommitted)
            .enable_auto_commit(false)
            .auto_offset_reset(OffsetReset::Earliest)
            .session_timeout(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_secs(1))
            .max_poll_records(max_poll),
    )
    .await?;
    consumer.subscribe([input.to_owned()]).await?;
    let producer = Producer::new(ProducerConfig::new(bootstrap).transactional_id(txn_id)).await?;
    ExactlyOncePipeline::with_config(consumer, producer, cfg).await
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
    coordinator_node(admin, "__transaction_state", txn_id).await
}

/// The group coordinator of `group`: the leader of its `__consumer_offsets` partition.
async fn group_coordinator(admin: &AdminClient, group: &str) -> i32 {
    coordinator_node(admin, "__consumer_offsets", group).await
}

/// The leader of the partition of `internal_topic` that `key` maps to (Kafka's
/// `Utils.abs(key.hashCode()) % partitions`), i.e. the coordinator of `key`.
async fn coordinator_node(admin: &AdminClient, internal_topic: &str, key: &str) -> i32 {
    let mut h: i32 = 0;
    for c in key.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(c as i32);
    }
    let h = if h == i32::MIN { 0 } else { h.abs() };
    eventually(internal_topic, Duration::from_secs(60), || async {
        let d = admin.describe_topics([internal_topic]).await.ok()?.pop()?;
        let p = h % d.partitions.len() as i32;
        d.partitions.iter().find(|x| x.partition == p).and_then(|x| x.leader)
    })
    .await
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

// ---------------------------------------------------------------------------------------
// Chaos: one pipeline instance, driven as the module docs of `txn::pipeline` say, while a
// seeded schedule kills, pauses and restarts the brokers it depends on.
// ---------------------------------------------------------------------------------------

/// splitmix64: a tiny seeded generator, so that a failing fault schedule can be replayed
/// with `FERROKAFKA_CHAOS_SEED=<seed>`.
struct ChaosRng(u64);

impl ChaosRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What the driver of the chaos pipeline saw, shared with the test.
#[derive(Default)]
struct ChaosStats {
    committed_batches: AtomicUsize,
    /// Input records of committed transactions (as the driver counted them; pacing only).
    committed_records: AtomicUsize,
    aborted_batches: AtomicUsize,
    /// `run_once` errors that are retriable: `run_once` called again.
    retriable: AtomicUsize,
    /// Other non-fatal `run_once` errors: `run_once` called again.
    other: AtomicUsize,
    /// Fatal `run_once` errors: the pipeline and its clients were dropped and rebuilt.
    fatal: AtomicUsize,
    /// Failed attempts to build a pipeline (retried).
    build_failures: AtomicUsize,
    /// The longest `run_once` call, in ms: a fault that hit a transaction in flight shows here.
    slowest_run_once_ms: std::sync::atomic::AtomicU64,
    /// Every error message seen, with how often.
    messages: std::sync::Mutex<BTreeMap<String, usize>>,
}

impl ChaosStats {
    fn note(&self, kind: &str, e: &ferrokafka::Error) {
        *self.messages.lock().unwrap().entry(format!("{kind}: {e}")).or_default() += 1;
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "committed batches {}, committed input records {}, aborted batches {}, \
             retriable errors {}, other non-fatal errors {}, fatal errors (rebuilds) {}, failed builds {}, \
             slowest run_once {} ms",
            self.committed_batches.load(Ordering::Relaxed),
            self.committed_records.load(Ordering::Relaxed),
            self.aborted_batches.load(Ordering::Relaxed),
            self.retriable.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
            self.fatal.load(Ordering::Relaxed),
            self.build_failures.load(Ordering::Relaxed),
            self.slowest_run_once_ms.load(Ordering::Relaxed),
        );
        for (m, n) in self.messages.lock().unwrap().iter() {
            s.push_str(&format!("\n    {n:>4} x {m}"));
        }
        s
    }
}

/// Runs the cluster control command off the runtime's thread (a restart waits for the node
/// to be ready, seconds during which the pipeline must keep running).
async fn chaos_ctl(cmd: &'static str, node: i32) {
    let n = node.to_string();
    tokio::task::spawn_blocking(move || cluster_ctl(&[cmd, &n])).await.expect("cluster control task");
}

/// Puts the cluster back (resume paused nodes, restart killed ones) if the test fails in
/// the middle of a fault, so that the next cluster test finds three nodes.
struct FaultGuard {
    down: Arc<std::sync::Mutex<Option<(&'static str, i32)>>>,
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        if let Some((fault, node)) = self.down.lock().unwrap().take() {
            let undo = if fault == "pause" { "resume" } else { "restart" };
            eprintln!("chaos: cleaning up after a failure: {undo} {node}");
            cluster_ctl(&[undo, &node.to_string()]);
        }
    }
}

/// Waits until every partition of `topics` has a leader and all three replicas in its ISR,
/// so that the next fault leaves min.insync.replicas (2) satisfiable.
async fn full_isr(admin: &AdminClient, topics: &[&str]) {
    all_three_up(admin).await;
    for t in topics {
        eventually(&format!("a full ISR on every partition of {t}"), Duration::from_secs(90), || async {
            let d = admin.describe_topics([*t]).await.ok()?.pop()?;
            d.partitions.iter().all(|p| p.leader.is_some() && p.isr.len() == 3).then_some(())
        })
        .await;
    }
}

async fn partition_leader(admin: &AdminClient, topic: &str, partition: i32) -> i32 {
    eventually(&format!("a leader of {topic}-{partition}"), Duration::from_secs(60), || async {
        admin.describe_topics([topic]).await.ok()?.pop()?.partitions.iter().find(|p| p.partition == partition)?.leader
    })
    .await
}

/// The chaos pipeline's build: as `build`, with small batches (many transactions, so that
/// every fault lands in the middle of some) and a shorter call timeout.
async fn chaos_build(bootstrap: &str, group: &str, txn_id: &str, input: &str) -> ferrokafka::Result<ExactlyOncePipeline> {
    let cfg = ferrokafka::txn::PipelineConfig { call_timeout: Duration::from_secs(30), ..Default::default() };
    build_with(bootstrap, group, txn_id, input, 20, cfg).await
}

/// Issue 11 (defect 1): one ExactlyOncePipeline instance copying a 6-partition RF 3 topic,
/// driven exactly as its docs say (after a non-fatal error call `run_once` again; after a
/// fatal one drop the pipeline and both clients and build new ones with the same
/// transactional id and group), while a seeded schedule in turn kills and restarts an
/// input partition's leader, kills the transaction coordinator's node, pauses (SIGSTOP) the
/// group coordinator's node or a partition leader for a few seconds, and kills an output
/// partition's leader. Afterwards read_committed output holds every input record exactly
/// once, in input order per partition, and the group's committed offsets are the input's
/// end offsets. Replay a failure with `FERROKAFKA_CHAOS_SEED=<the printed seed>`.
#[tokio::test]
async fn eos_chaos_one_pipeline_driven_as_documented_survives_leader_coordinator_kills_and_pauses() {
    let _faults = CLUSTER_FAULTS.lock().await;
    let seed: u64 = std::env::var("FERROKAFKA_CHAOS_SEED")
        .ok()
        .map(|s| s.trim().parse().expect("FERROKAFKA_CHAOS_SEED must be a u64"))
        .unwrap_or(0x11_c4a05);
    eprintln!("chaos: seed {seed} (replay with FERROKAFKA_CHAOS_SEED={seed})");
    let mut rng = ChaosRng(seed);
    let started = std::time::Instant::now();
    let bootstrap = cluster_bootstrap();
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let (input, output) = (unique("chaos-in"), unique("chaos-out"));
    replicated_topic(&admin, &input, PARTITIONS).await;
    replicated_topic(&admin, &output, PARTITIONS).await;
    let per = 300;
    let total = per * PARTITIONS as usize;
    fill(&bootstrap, &input, per).await;
    let (group, txn_id) = (unique("chaos-group"), unique("chaos-txn"));

    // The faults finished so far; the driver paces itself by it (below).
    const FAULTS: usize = 4;
    let faults_done = Arc::new(AtomicUsize::new(0));
    let stats = Arc::new(ChaosStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let driver = {
        let (stats, stop, faults_done) = (stats.clone(), stop.clone(), faults_done.clone());
        let (bootstrap, group, txn_id, input, output) =
            (bootstrap.clone(), group.clone(), txn_id.clone(), input.clone(), output.clone());
        tokio::spawn(async move {
            'rebuild: loop {
                let pipeline = match chaos_build(&bootstrap, &group, &txn_id, &input).await {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("chaos: building the pipeline failed ({e}); trying again");
                        stats.build_failures.fetch_add(1, Ordering::Relaxed);
                        stats.note("build", &e);
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                while !stop.load(Ordering::Acquire) {
                    // Pacing, so that the copy spans the fault schedule: while fault k is
                    // still to finish, copy at most (2k + 3) / 10 of the input (fault k
                    // starts at (2k + 1) / 10, so every fault finds the copy under way).
                    let done = faults_done.load(Ordering::Acquire);
                    let limit = if done >= FAULTS { usize::MAX } else { total * (2 * done + 3) / 10 };
                    if stats.committed_records.load(Ordering::Relaxed) >= limit {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    let call = std::time::Instant::now();
                    let result = pipeline
                        .run_once(|rec| {
                            vec![ProducerRecord {
                                topic: output.clone(),
                                partition: Some(rec.partition),
                                key: rec.key.clone(),
                                value: rec.value.clone(),
                                ..Default::default()
                            }]
                        })
                        .await;
                    stats.slowest_run_once_ms.fetch_max(call.elapsed().as_millis() as u64, Ordering::Relaxed);
                    match result {
                        Ok(o) if o.committed => {
                            stats.committed_batches.fetch_add(1, Ordering::Relaxed);
                            stats.committed_records.fetch_add(o.consumed, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(150)).await;
                        }
                        Ok(o) if o.consumed > 0 => {
                            eprintln!("chaos: a batch of {} records was aborted and rewound", o.consumed);
                            stats.aborted_batches.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(e) if e.is_fatal() => {
                            eprintln!("chaos: fatal error ({e}); dropping the pipeline and building a new one");
                            stats.fatal.fetch_add(1, Ordering::Relaxed);
                            stats.note("fatal", &e);
                            drop(pipeline);
                            continue 'rebuild;
                        }
                        Err(e) => {
                            let kind = if e.is_retriable() { "retriable" } else { "other" };
                            eprintln!("chaos: {kind} error ({e}); calling run_once again");
                            if e.is_retriable() { &stats.retriable } else { &stats.other }.fetch_add(1, Ordering::Relaxed);
                            stats.note(kind, &e);
                            // Not a busy loop while a broker is down.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                match tokio::time::timeout(Duration::from_secs(60), pipeline.close()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("chaos: closing the pipeline: {e}"),
                    Err(_) => eprintln!("chaos: closing the pipeline timed out"),
                }
                return;
            }
        })
    };

    // The fault schedule.
    let down = Arc::new(std::sync::Mutex::new(None::<(&'static str, i32)>));
    let _guard = FaultGuard { down: down.clone() };
    let internal = ["__transaction_state", "__consumer_offsets"];
    let all_topics = [input.as_str(), output.as_str(), internal[0], internal[1]];
    for k in 0..FAULTS {
        let at = total * (2 * k + 1) / 10;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while stats.committed_records.load(Ordering::Relaxed) < at {
            assert!(
                std::time::Instant::now() < deadline && !driver.is_finished(),
                "chaos: the pipeline did not reach {at} committed records before fault {k} within 120 s \
                 (seed {seed}); {}",
                stats.summary()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (what, fault, node) = match k {
            0 => {
                let p = rng.range(0, PARTITIONS as u64 - 1) as i32;
                (format!("kill the leader of input partition {p}"), "kill", partition_leader(&admin, &input, p).await)
            }
            1 => ("kill the transaction coordinator's node".to_owned(), "kill", txn_coordinator(&admin, &txn_id).await),
            2 => {
                if rng.range(0, 1) == 0 {
                    ("pause the group coordinator's node".to_owned(), "pause", group_coordinator(&admin, &group).await)
                } else {
                    let (t, p) = (if rng.range(0, 1) == 0 { &input } else { &output }, rng.range(0, PARTITIONS as u64 - 1) as i32);
                    (format!("pause the leader of {t}-{p}"), "pause", partition_leader(&admin, t, p).await)
                }
            }
            _ => {
                let p = rng.range(0, PARTITIONS as u64 - 1) as i32;
                (format!("kill the leader of output partition {p}"), "kill", partition_leader(&admin, &output, p).await)
            }
        };
        // A pause stays below the brokers' session timeout (6 s); a kill lasts a bit longer.
        let secs = if fault == "pause" { rng.range(2, 5) } else { rng.range(2, 6) };
        eprintln!(
            "chaos: fault {k} at {:.1}s, {} of {total} records committed: {what} (node {node}) for {secs} s",
            started.elapsed().as_secs_f64(),
            stats.committed_records.load(Ordering::Relaxed)
        );
        *down.lock().unwrap() = Some((fault, node));
        chaos_ctl(fault, node).await;
        tokio::time::sleep(Duration::from_secs(secs)).await;
        chaos_ctl(if fault == "pause" { "resume" } else { "restart" }, node).await;
        *down.lock().unwrap() = None;
        full_isr(&admin, &all_topics).await;
        eprintln!(
            "chaos: fault {k} over at {:.1}s, cluster whole again; {} of {total} records committed",
            started.elapsed().as_secs_f64(),
            stats.committed_records.load(Ordering::Relaxed)
        );
        faults_done.store(k + 1, Ordering::Release);
    }

    // No more faults: the pipeline must finish, i.e. the group's committed offsets reach
    // the input's end offsets.
    let input_tps: Vec<TopicPartition> = (0..PARTITIONS).map(|p| TopicPartition::new(&input, p)).collect();
    let checker = Consumer::new(ConsumerConfig::new(&bootstrap).group_id(&group).enable_auto_commit(false)).await.unwrap();
    let ends = checker.end_offsets(&input_tps).await.unwrap();
    assert_eq!(ends.values().sum::<i64>() as usize, total, "input end offsets {ends:?}");
    let committed_offsets = || {
        let (tps, c) = (input_tps.clone(), &checker);
        async move {
            let got = c.committed(&tps).await.ok()?;
            Some(tps.iter().map(|tp| (tp.partition, got.get(tp).map(|o| o.offset))).collect::<BTreeMap<i32, Option<i64>>>())
        }
    };
    let want: BTreeMap<i32, Option<i64>> = input_tps.iter().map(|tp| (tp.partition, Some(ends[tp]))).collect();
    // Stuck: no change of the committed offsets for 60 s (a rebuild takes at most about a
    // session timeout, 10 s), or 150 s in all.
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let (mut last, mut last_change) = (None, std::time::Instant::now());
    let stuck = loop {
        if let Some(c) = committed_offsets().await {
            if c == want {
                break None;
            }
            if last.as_ref() != Some(&c) {
                (last, last_change) = (Some(c), std::time::Instant::now());
            }
        }
        if driver.is_finished() {
            break Some("the driver task ended".to_owned());
        }
        if last_change.elapsed() > Duration::from_secs(60) || std::time::Instant::now() > deadline {
            break Some(format!("no progress for {:.0} s", last_change.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if let Some(why) = stuck {
        // Say what the output holds, which usually tells why.
        stop.store(true, Ordering::Release);
        let _ = tokio::time::timeout(Duration::from_secs(60), driver).await;
        let out = read_committed_within(&bootstrap, &output, total, Duration::from_secs(10)).await;
        panic!(
            "chaos: the pipeline did not finish after the last fault (seed {seed}): {why}; the group's \
             committed offsets are {last:?}, the input ends at {want:?}; {}\noutput (read_committed): {}",
            stats.summary(),
            exactly_once_mismatch(&out, per).unwrap_or_else(|| "exactly once so far".into())
        );
    }
    stop.store(true, Ordering::Release);
    tokio::time::timeout(Duration::from_secs(120), driver)
        .await
        .unwrap_or_else(|_| panic!("chaos: the driver did not stop within 120 s; {}", stats.summary()))
        .expect("the driver task");
    eprintln!("chaos: copy done at {:.1}s (seed {seed}); {}", started.elapsed().as_secs_f64(), stats.summary());

    let out = read_committed(&bootstrap, &output, total).await;
    assert_exactly_once(&out, per);
    // Offsets again after the instance left: nothing moved them past (or back from) the end.
    let c = eventually("the group's committed offsets", Duration::from_secs(60), committed_offsets).await;
    assert_eq!(c, want, "the group's committed offsets must be the input's end offsets");
    checker.close().await.unwrap();
    eprintln!("chaos: passed in {:.1}s (seed {seed})", started.elapsed().as_secs_f64());
    drop_topic(&admin, &input).await;
    drop_topic(&admin, &output).await;
}
