//! Consumer groups (classic protocol) against the real broker: assignment balance, member
//! failure, cooperative rebalancing, static membership, the poll timeout, pattern
//! subscriptions, and groups mixing ferrokafka with Java consumers.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrokafka::admin::NewTopic;
use ferrokafka::consumer::{
    CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor, StickyAssignor,
    Consumer, ConsumerConfig, ConsumerRebalanceListener, GroupProtocol, OffsetReset, PartitionAssignor, TopicPartition,
};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::Error;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::common::{eventually, single_admin, single_bootstrap, single_topic, unique};

async fn topic(partitions: i32) -> String {
    single_topic("group", partitions).await
}

async fn produce(topic: &str, partitions: i32, per_partition: usize) {
    let producer = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    let mut futs = Vec::new();
    for p in 0..partitions {
        for i in 0..per_partition {
            futs.push(producer.send(ProducerRecord::new(topic).partition(p).value(format!("{p}-{i}"))).await.unwrap());
        }
    }
    for f in futs {
        f.await.unwrap();
    }
    producer.close(Duration::from_secs(30)).await.unwrap();
}

/// A rebalance callback as a member saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
    Lost(Vec<TopicPartition>),
}

/// Records every callback and commits the positions from `on_partitions_revoked`.
struct Recorder {
    events: Arc<Mutex<Vec<(Instant, Event)>>>,
    commit_on_revoke: bool,
}

impl ConsumerRebalanceListener for Recorder {
    fn on_partitions_revoked<'a>(&'a self, c: &'a Consumer, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.events.lock().unwrap().push((Instant::now(), Event::Revoked(p.to_vec())));
            if self.commit_on_revoke && !p.is_empty() {
                let offsets = c.positions().into_iter().filter(|(tp, _)| p.contains(tp)).collect();
                c.commit(Some(offsets)).await.expect("commit from on_partitions_revoked");
            }
        })
    }
    fn on_partitions_assigned<'a>(&'a self, _c: &'a Consumer, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.events.lock().unwrap().push((Instant::now(), Event::Assigned(p.to_vec())));
        })
    }
    fn on_partitions_lost<'a>(&'a self, _c: &'a Consumer, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.events.lock().unwrap().push((Instant::now(), Event::Lost(p.to_vec())));
        })
    }
}

/// One group member running in its own task: polls, records what it got, commits after
/// each poll (manual commits, as an at-least-once application does).
/// (topic, partition, offset, when) of one processed record.
type Seen = (String, i32, i64, Instant);

struct Member {
    task: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    /// (partition, offset, when) of every record processed.
    seen: Arc<Mutex<Vec<Seen>>>,
    events: Arc<Mutex<Vec<(Instant, Event)>>>,
    assignment: Arc<Mutex<Vec<TopicPartition>>>,
    generation: Arc<Mutex<i32>>,
    /// Set while the member should not poll (to exceed max_poll_interval).
    hold: Arc<AtomicBool>,
}

fn base_config(group: &str) -> ConsumerConfig {
    ConsumerConfig::new(single_bootstrap())
        .group_id(group)
        .auto_offset_reset(OffsetReset::Earliest)
        .enable_auto_commit(false)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(500))
}

enum Sub {
    Topics(Vec<String>),
    Pattern(String),
}

impl Member {
    async fn start(cfg: ConsumerConfig, sub: Sub) -> Member {
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(Mutex::new(Vec::new()));
        let assignment = Arc::new(Mutex::new(Vec::new()));
        let generation = Arc::new(Mutex::new(-1));
        let consumer = Consumer::new(cfg).await.unwrap();
        consumer.set_rebalance_listener(Recorder { events: events.clone(), commit_on_revoke: true }).unwrap();
        match sub {
            Sub::Topics(t) => consumer.subscribe(t).await.unwrap(),
            Sub::Pattern(p) => consumer.subscribe_pattern(&p).await.unwrap(),
        }
        let (s, h, se, a, g) = (stop.clone(), hold.clone(), seen.clone(), assignment.clone(), generation.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Acquire) {
                if h.load(Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let recs = match consumer.poll(Duration::from_millis(200)).await {
                    Ok(r) => r,
                    Err(e) => panic!("poll failed: {e}"),
                };
                let now = Instant::now();
                {
                    let mut v = se.lock().unwrap();
                    for r in &recs {
                        v.push((r.topic.to_string(), r.partition, r.offset, now));
                    }
                }
                *a.lock().unwrap() = consumer.assignment();
                *g.lock().unwrap() = consumer.group_metadata().unwrap().generation_id;
                if !recs.is_empty() {
                    match consumer.commit(None).await {
                        Ok(()) => {}
                        // The group moved on; the next poll rejoins and the records are
                        // processed again by their new owner (at least once).
                        Err(Error::CommitFailed(_)) => {}
                        Err(e) if e.code() == Some(ferrokafka::ErrorCode::RebalanceInProgress) => {}
                        Err(e) => panic!("commit failed: {e}"),
                    }
                }
            }
            consumer.close().await.unwrap();
        });
        Member { task, stop, seen, events, assignment, generation, hold }
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.lock().unwrap().clone()
    }

    fn seen_set(&self) -> BTreeSet<(i32, i64)> {
        self.seen.lock().unwrap().iter().map(|(_, p, o, _)| (*p, *o)).collect()
    }

    /// Stops cleanly: commits, revokes, leaves the group.
    async fn stop(self) -> Self {
        self.stop.store(true, Ordering::Release);
        let m = self;
        let Member { task, stop, seen, events, assignment, generation, hold } = m;
        tokio::time::timeout(Duration::from_secs(60), task).await.expect("member stops").unwrap();
        Member { task: tokio::spawn(async {}), stop, seen, events, assignment, generation, hold }
    }

    /// Crashes: the task and its consumer vanish without LeaveGroup or commit.
    fn kill(&self) {
        self.task.abort();
    }
}

/// Waits until the members' assignments cover `n` partitions exactly once, with sizes
/// `sizes` (sorted), and returns them.
async fn settled(members: &[&Member], n: usize, sizes: &[usize]) -> Vec<Vec<TopicPartition>> {
    eventually("a settled assignment", Duration::from_secs(60), || async {
        let a: Vec<Vec<TopicPartition>> = members.iter().map(|m| m.assignment()).collect();
        let all: Vec<&TopicPartition> = a.iter().flatten().collect();
        let unique: BTreeSet<&TopicPartition> = all.iter().copied().collect();
        let mut got: Vec<usize> = a.iter().map(Vec::len).collect();
        got.sort();
        (all.len() == n && unique.len() == n && got == sizes).then_some(a)
    })
    .await
}

/// Offsets `range` of partitions `0..partitions`, as (partition, offset).
fn offsets(partitions: i32, range: std::ops::Range<i64>) -> BTreeSet<(i32, i64)> {
    (0..partitions).flat_map(|p| range.clone().map(move |o| (p, o))).collect()
}

/// Waits until the members together have processed exactly `expected` (duplicates
/// allowed; `extra` adds what another consumer, e.g. the Java member, processed).
async fn all_processed(what: &str, members: &[&Member], extra: impl Fn() -> BTreeSet<(i32, i64)>, expected: &BTreeSet<(i32, i64)>) {
    eventually(what, Duration::from_secs(30), || async {
        let mut all = extra();
        for m in members {
            all.extend(m.seen_set());
        }
        (all == *expected).then_some(())
    })
    .await;
}

/// Range on one topic: every member's partitions are one contiguous block.
fn assert_range_blocks(parts: &[Vec<TopicPartition>], label: &str) {
    for p in parts {
        let v: Vec<i32> = p.iter().map(|tp| tp.partition).collect::<BTreeSet<i32>>().into_iter().collect();
        assert!(v.windows(2).all(|w| w[1] == w[0] + 1), "{label} {v:?}");
    }
}

/// A clean restart after everything was committed: five new records per partition after
/// offset 80, and a new member processes exactly those.
async fn restart_processes_only_new(cfg: ConsumerConfig, topic: &str, what: &str) {
    produce(topic, 6, 5).await;
    let d = Member::start(cfg, Sub::Topics(vec![topic.to_owned()])).await;
    let new = offsets(6, 80..85);
    eventually(what, Duration::from_secs(30), || async { (d.seen_set() == new).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.seen_set(), new, "a committed record was processed again");
    d.stop().await;
}

fn strategy(name: &str) -> Vec<Arc<dyn PartitionAssignor>> {
    let a: Arc<dyn PartitionAssignor> = match name {
        "range" => Arc::new(RangeAssignor),
        "roundrobin" => Arc::new(RoundRobinAssignor),
        "sticky" => Arc::new(StickyAssignor),
        "cooperative-sticky" => Arc::new(CooperativeStickyAssignor),
        other => panic!("unknown assignor {other}"),
    };
    vec![a]
}

async fn three_members_twelve_partitions(assignor: &str) {
    let topic = topic(12).await;
    produce(&topic, 12, 50).await;
    let group = unique("g3");
    let cfg = || base_config(&group).partition_assignment_strategy(strategy(assignor));
    let a = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let b = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let c = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let parts = settled(&[&a, &b, &c], 12, &[4, 4, 4]).await;
    // Every member ends in the same generation. Each member samples its generation after
    // its own poll returns, so one may still show the previous generation for a poll
    // interval after the others (cooperative protocols rebalance in two rounds, and a
    // member that keeps its partitions sees no change of assignment): allow it that long.
    let gens = eventually("every member in the same generation", Duration::from_secs(10), || async {
        let gens: BTreeSet<i32> = [&a, &b, &c].iter().map(|m| *m.generation.lock().unwrap()).collect();
        (gens.len() == 1).then_some(gens)
    })
    .await;
    assert!(gens.iter().all(|g| *g > 0), "a member never joined: {gens:?}");
    let now: Vec<Vec<TopicPartition>> = [&a, &b, &c].iter().map(|m| m.assignment()).collect();
    assert_eq!(now, parts, "the assignment changed after it settled");
    // Every record consumed by someone.
    all_processed("all 600 records consumed", &[&a, &b, &c], BTreeSet::new, &offsets(12, 0..50)).await;
    // range on one topic: contiguous blocks of 4.
    if assignor == "range" {
        assert_range_blocks(&parts, "range gave");
    }
    for m in [a, b, c] {
        m.stop().await;
    }
}

#[tokio::test]
async fn group_three_members_range() {
    three_members_twelve_partitions("range").await;
}

#[tokio::test]
async fn group_three_members_roundrobin() {
    three_members_twelve_partitions("roundrobin").await;
}

#[tokio::test]
async fn group_three_members_sticky() {
    three_members_twelve_partitions("sticky").await;
}

#[tokio::test]
async fn group_three_members_cooperative_sticky() {
    three_members_twelve_partitions("cooperative-sticky").await;
}

#[tokio::test]
async fn group_killed_member_partitions_move_and_commits_hold() {
    let topic = topic(6).await;
    produce(&topic, 6, 40).await;
    let group = unique("gkill");
    let cfg = || base_config(&group).session_timeout(Duration::from_secs(6));
    let a = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let b = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let c = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let before = settled(&[&a, &b, &c], 6, &[2, 2, 2]).await;
    let killed_parts = before[2].clone();
    let t0 = Instant::now();
    c.kill();
    // Its partitions move to the survivors within the session timeout (plus a rebalance).
    let after = settled(&[&a, &b], 6, &[3, 3]).await;
    let moved_in = t0.elapsed();
    assert!(moved_in < Duration::from_secs(20), "partitions moved after {moved_in:?}");
    assert!(killed_parts.iter().all(|tp| after.iter().flatten().any(|x| x == tp)));
    produce(&topic, 6, 40).await;
    all_processed("every record processed at least once", &[&a, &b, &c], BTreeSet::new, &offsets(6, 0..80)).await;
    let a = a.stop().await;
    let b = b.stop().await;
    assert!(a.events.lock().unwrap().iter().any(|(_, e)| matches!(e, Event::Revoked(_))));
    drop(b);
    // A clean restart processes nothing that was committed: only the new records.
    restart_processes_only_new(cfg(), &topic, "the restarted member gets the new records").await;
}

#[tokio::test]
async fn group_cooperative_sticky_keeps_consuming_through_a_rebalance() {
    let topic = topic(6).await;
    let group = unique("gcoop");
    let cfg = || base_config(&group).partition_assignment_strategy(strategy("cooperative-sticky"));
    let a = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    settled(&[&a], 6, &[6]).await;
    // A steady stream: one record per partition every 20 ms.
    let running = Arc::new(AtomicBool::new(true));
    let producer_task = {
        let (topic, running) = (topic.clone(), running.clone());
        tokio::spawn(async move {
            let producer = Producer::new(ProducerConfig::new(single_bootstrap()).linger(Duration::ZERO)).await.unwrap();
            let mut i = 0u64;
            while running.load(Ordering::Acquire) {
                for p in 0..6 {
                    // Fire and forget: the delivery is not awaited.
                    drop(producer.send(ProducerRecord::new(&topic).partition(p).value(format!("{i}"))).await.unwrap());
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            producer.close(Duration::from_secs(30)).await.unwrap();
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let join_started = Instant::now();
    let b = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let parts = settled(&[&a, &b], 6, &[3, 3]).await;
    let join_done = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::Release);
    producer_task.await.unwrap();
    let kept: BTreeSet<i32> = parts[0].iter().map(|tp| tp.partition).collect();
    // A revoked only what moved to B; it never gave up the partitions it kept.
    let events = a.events.lock().unwrap().clone();
    for (_, e) in &events {
        if let Event::Revoked(r) | Event::Lost(r) = e {
            assert!(r.iter().all(|tp| !kept.contains(&tp.partition)), "kept partitions revoked: {events:?}");
        }
    }
    // No gap in the kept partitions' consumption during the rebalance: records of each kept
    // partition kept arriving at A, never more than 1 s apart, and offsets never repeat.
    let seen = a.seen.lock().unwrap().clone();
    for p in &kept {
        let times: Vec<Instant> = seen
            .iter()
            .filter(|(_, q, _, t)| q == p && *t >= join_started - Duration::from_millis(500) && *t <= join_done)
            .map(|(_, _, _, t)| *t)
            .collect();
        assert!(!times.is_empty(), "partition {p} not consumed while B joined");
        let max_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
        assert!(max_gap < Duration::from_secs(1), "partition {p}: a {max_gap:?} gap during the rebalance");
        let offsets: Vec<i64> = seen.iter().filter(|(_, q, _, _)| q == p).map(|(_, _, o, _)| *o).collect();
        assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "partition {p} offsets not contiguous at A");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn group_static_member_restart_causes_no_rebalance() {
    let topic = topic(4).await;
    let group = unique("gstatic");
    let cfg = |id: &str| base_config(&group).group_instance_id(id).session_timeout(Duration::from_secs(30));
    let a = Member::start(cfg("static-a"), Sub::Topics(vec![topic.clone()])).await;
    let b = Member::start(cfg("static-b"), Sub::Topics(vec![topic.clone()])).await;
    let before = settled(&[&a, &b], 4, &[2, 2]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gen_before = *b.generation.lock().unwrap();
    let b_events_before = b.events.lock().unwrap().len();
    // Restart A within the session timeout (a static member does not leave on close).
    a.stop().await;
    let a2 = Member::start(cfg("static-a"), Sub::Topics(vec![topic.clone()])).await;
    eventually("the restarted static member's assignment", Duration::from_secs(20), || async {
        (a2.assignment() == before[0]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(*b.generation.lock().unwrap(), gen_before, "the restart caused a rebalance");
    assert_eq!(b.events.lock().unwrap().len(), b_events_before, "B saw callbacks: {:?}", b.events.lock().unwrap());
    assert_eq!(*a2.generation.lock().unwrap(), gen_before);
    assert_eq!(b.assignment(), before[1]);
    a2.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn group_fenced_static_member_gets_a_fatal_error() {
    let topic = topic(2).await;
    let group = unique("gfence");
    let cfg = base_config(&group).group_instance_id("dup").session_timeout(Duration::from_secs(30));
    let first = Consumer::new(cfg.clone()).await.unwrap();
    first.subscribe([topic.clone()]).await.unwrap();
    eventually("first member assigned", Duration::from_secs(20), || async {
        first.poll(Duration::from_millis(100)).await.unwrap();
        (first.assignment().len() == 2).then_some(())
    })
    .await;
    let second = Consumer::new(cfg).await.unwrap();
    second.subscribe([topic.clone()]).await.unwrap();
    eventually("second member assigned", Duration::from_secs(20), || async {
        second.poll(Duration::from_millis(100)).await.unwrap();
        (second.assignment().len() == 2).then_some(())
    })
    .await;
    // The first one's heartbeat (or commit) now finds itself fenced: fatal and clear.
    let err = eventually("the first member fenced", Duration::from_secs(20), || async {
        first.poll(Duration::from_millis(200)).await.err()
    })
    .await;
    assert_eq!(err.code(), Some(ferrokafka::ErrorCode::FencedInstanceId), "{err}");
    assert!(err.is_fatal());
    second.close().await.unwrap();
}

#[tokio::test]
async fn group_member_that_stops_polling_leaves_and_rejoins() {
    let topic = topic(4).await;
    let group = unique("gpoll");
    let cfg = || base_config(&group).max_poll_interval(Duration::from_secs(3));
    let a = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let b = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let before = settled(&[&a, &b], 4, &[2, 2]).await;
    // B stops polling for longer than max_poll_interval: it leaves, A takes everything.
    b.hold.store(true, Ordering::Release);
    eventually("A owns every partition", Duration::from_secs(20), || async {
        (a.assignment().len() == 4).then_some(())
    })
    .await;
    // B polls again: it reports its partitions lost and rejoins.
    b.hold.store(false, Ordering::Release);
    settled(&[&a, &b], 4, &[2, 2]).await;
    let lost: Vec<Vec<TopicPartition>> = b
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, e)| if let Event::Lost(p) = e { Some(p.clone()) } else { None })
        .collect();
    assert_eq!(lost.len(), 1, "B's events: {:?}", b.events.lock().unwrap());
    let mut l = lost[0].clone();
    l.sort();
    let mut want = before[1].clone();
    want.sort();
    assert_eq!(l, want);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn group_pattern_subscription_picks_up_a_new_topic() {
    let prefix = unique("gpat");
    let admin = single_admin().await;
    let t1 = format!("{prefix}-one");
    admin.create_topic(NewTopic::new(&t1, 2, 1)).await.unwrap();
    let group = unique("gpatg");
    let mut cfg = base_config(&group);
    cfg.client.metadata_max_age = Duration::from_secs(2);
    let m = Member::start(cfg, Sub::Pattern(format!("{}-.*", regex_escape(&prefix)))).await;
    settled(&[&m], 2, &[2]).await;
    let t2 = format!("{prefix}-two");
    admin.create_topic(NewTopic::new(&t2, 3, 1)).await.unwrap();
    produce(&t2, 3, 10).await;
    settled(&[&m], 5, &[5]).await;
    eventually("records of the new topic", Duration::from_secs(30), || async {
        let n = m.seen.lock().unwrap().iter().filter(|(t, ..)| *t == t2).count();
        (n == 30).then_some(())
    })
    .await;
    m.stop().await;
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_ascii_alphanumeric() || c == '_' { vec![c] } else { vec!['\\', c] }).collect()
}

#[tokio::test]
async fn group_api_misuse_is_a_clear_error() {
    let topic = topic(1).await;
    let c = Consumer::new(ConsumerConfig::new(single_bootstrap())).await.unwrap();
    let e = c.subscribe([topic.clone()]).await.unwrap_err();
    assert!(e.to_string().contains("group id"), "{e}");
    let g = Consumer::new(base_config(&unique("gmis"))).await.unwrap();
    g.subscribe([topic.clone()]).await.unwrap();
    let e = g.assign(vec![TopicPartition::new(&topic, 0)]).unwrap_err();
    assert!(e.to_string().contains("mutually exclusive"), "{e}");
    assert!(matches!(g.subscribe_pattern("(").await, Err(Error::InvalidArgument(_))));
    g.close().await.unwrap();
}

// ---- KIP-848 (group_protocol = Consumer) -------------------------------------------------

/// Whether the broker under test has the KIP-848 protocol (Kafka 4.x; `KAFKA_VERSION` is
/// set by scripts/test.sh).
fn broker_has_kip848() -> bool {
    !std::env::var("KAFKA_VERSION").unwrap_or_else(|_| "4.4.0".into()).starts_with("3.")
}

fn kip848_config(group: &str) -> ConsumerConfig {
    base_config(group).group_protocol(GroupProtocol::Consumer)
}

#[tokio::test]
async fn kip848_three_members_balanced_or_clear_error_on_3x() {
    let topic = topic(12).await;
    let group = unique("g848");
    if !broker_has_kip848() {
        // 3.9 lists ConsumerGroupHeartbeat but has the new protocol off: the error comes
        // from subscribe or from the first poll (as with the Java client), and is fatal.
        let c = Consumer::new(kip848_config(&group)).await.unwrap();
        let e = match c.subscribe([topic.clone()]).await {
            Err(e) => e,
            Ok(()) => eventually("the KIP-848 error", Duration::from_secs(20), || async {
                c.poll(Duration::from_millis(200)).await.err()
            })
            .await,
        };
        assert!(matches!(e, Error::Config(_)) && e.to_string().contains("KIP-848"), "{e}");
        assert!(c.poll(Duration::from_millis(10)).await.is_err(), "the error must stick");
        return;
    }
    produce(&topic, 12, 50).await;
    for assignor in ["uniform", "range"] {
        let group = unique("g848");
        let cfg = || kip848_config(&group).group_remote_assignor(assignor);
        let a = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
        let b = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
        let c = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
        let parts = settled(&[&a, &b, &c], 12, &[4, 4, 4]).await;
        all_processed("all 600 records consumed", &[&a, &b, &c], BTreeSet::new, &offsets(12, 0..50)).await;
        if assignor == "range" {
            assert_range_blocks(&parts, "range gave");
        }
        for m in [a, b, c] {
            m.stop().await;
        }
    }
}

#[tokio::test]
async fn kip848_killed_member_partitions_move() {
    if !broker_has_kip848() {
        return;
    }
    let topic = topic(6).await;
    produce(&topic, 6, 40).await;
    let group = unique("g848kill");
    let cfg = || kip848_config(&group);
    let a = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let b = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let c = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    settled(&[&a, &b, &c], 6, &[2, 2, 2]).await;
    let t0 = Instant::now();
    c.kill();
    settled(&[&a, &b], 6, &[3, 3]).await;
    assert!(t0.elapsed() < Duration::from_secs(25), "partitions moved after {:?}", t0.elapsed());
    produce(&topic, 6, 40).await;
    all_processed("every record processed at least once", &[&a, &b, &c], BTreeSet::new, &offsets(6, 0..80)).await;
    a.stop().await;
    b.stop().await;
    restart_processes_only_new(cfg(), &topic, "the restarted member gets only the new records").await;
}

#[tokio::test]
async fn kip848_static_member_restart_keeps_its_partitions() {
    if !broker_has_kip848() {
        return;
    }
    let topic = topic(4).await;
    let group = unique("g848static");
    let cfg = |id: &str| kip848_config(&group).group_instance_id(id);
    let a = Member::start(cfg("s848-a"), Sub::Topics(vec![topic.clone()])).await;
    let b = Member::start(cfg("s848-b"), Sub::Topics(vec![topic.clone()])).await;
    let before = settled(&[&a, &b], 4, &[2, 2]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b_events = b.events.lock().unwrap().len();
    a.stop().await;
    let a2 = Member::start(cfg("s848-a"), Sub::Topics(vec![topic.clone()])).await;
    eventually("the restarted static member's assignment", Duration::from_secs(20), || async {
        (a2.assignment() == before[0]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(b.assignment(), before[1]);
    assert_eq!(b.events.lock().unwrap().len(), b_events, "B saw callbacks: {:?}", b.events.lock().unwrap());
    a2.stop().await;
    b.stop().await;
}

// ---- Mixed groups: ferrokafka and the Java client in one group ---------------------------

/// A Java consumer (the real kafka-clients jar, `KafkaTool group-consume`) in a group.
struct JavaMember {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl JavaMember {
    fn start(group: &str, topic: &str, assignor: &str) -> JavaMember {
        use std::io::BufRead;
        let script = format!("{}/scripts/java-tool.sh", env!("CARGO_MANIFEST_DIR"));
        let mut child = std::process::Command::new("bash")
            .arg(&script)
            .args(["group-consume", &single_bootstrap(), group, topic, assignor, "120"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the Java group member");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        JavaMember { child, lines, reader: Some(reader) }
    }

    /// Its current partitions: ASSIGNED adds, REVOKED removes (eager and cooperative alike).
    fn assignment(&self, topic: &str) -> Vec<TopicPartition> {
        let mut owned = BTreeSet::new();
        for line in self.lines.lock().unwrap().iter() {
            let (kind, list) = line.split_once('\t').unwrap_or((line.as_str(), ""));
            let parts = list.split(',').filter(|s| !s.is_empty()).map(|s| {
                let (t, p) = s.rsplit_once('-').expect("topic-partition");
                assert_eq!(t, topic);
                TopicPartition::new(t, p.parse::<i32>().unwrap())
            });
            match kind {
                "ASSIGNED" => owned.extend(parts),
                "REVOKED" => {
                    for tp in parts {
                        owned.remove(&tp);
                    }
                }
                _ => {}
            }
        }
        owned.into_iter().collect()
    }

    fn records(&self) -> BTreeSet<(i32, i64)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| {
                let mut f = l.split('\t');
                (f.next() == Some("RECORD")).then(|| (f.next().unwrap().parse().unwrap(), f.next().unwrap().parse().unwrap()))
            })
            .collect()
    }

    /// Closes its stdin: it calls close() (leaving the group) and exits.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        assert!(status.success(), "the Java member failed: {status}; output {:?}", self.lines.lock().unwrap());
        assert!(self.lines.lock().unwrap().iter().any(|l| l == "CLOSED"));
    }
}

impl Drop for JavaMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn mixed_group(assignor: &str) {
    let topic = topic(12).await;
    produce(&topic, 12, 20).await;
    let group = unique("gmixed");
    let java = JavaMember::start(&group, &topic, assignor);
    eventually("the Java member's first assignment", Duration::from_secs(60), || async {
        java.lines.lock().unwrap().iter().any(|l| l == "READY").then_some(())
    })
    .await;
    let cfg = || base_config(&group).partition_assignment_strategy(strategy(assignor));
    let a = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    let b = Member::start(cfg(), Sub::Topics(vec![topic.clone()])).await;
    // No overlap, no gap: the three current assignments cover the 12 partitions once.
    let parts = eventually("a settled mixed assignment", Duration::from_secs(60), || async {
        let all = vec![java.assignment(&topic), a.assignment(), b.assignment()];
        let n: usize = all.iter().map(Vec::len).sum();
        let unique: BTreeSet<&TopicPartition> = all.iter().flatten().collect();
        let mut sizes: Vec<usize> = all.iter().map(Vec::len).collect();
        sizes.sort();
        (n == 12 && unique.len() == 12 && sizes == [4, 4, 4]).then_some(all)
    })
    .await;
    if assignor == "range" {
        assert_range_blocks(&parts, "range block");
    }
    all_processed("every record consumed by the mixed group", &[&a, &b], || java.records(), &offsets(12, 0..20)).await;
    // The Java member leaves: the ferrokafka members take over its partitions.
    java.stop();
    settled(&[&a, &b], 12, &[6, 6]).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn group_mixed_with_java_range() {
    mixed_group("range").await;
}

#[tokio::test]
async fn group_mixed_with_java_cooperative_sticky() {
    mixed_group("cooperative-sticky").await;
}
