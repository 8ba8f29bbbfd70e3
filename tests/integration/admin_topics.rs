//! Admin client integration tests (issue 13): topics, partitions, offsets, records,
//! replicas, log dirs, cluster health. Single-node tests on `FERROKAFKA_BOOTSTRAP`, the
//! reassignment / election / health-under-fault tests on the 3-node cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferrokafka::admin::*;
use ferrokafka::consumer::{IsolationLevel, TopicPartition};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::{Error, ErrorCode};

use crate::cluster::{all_three_up, drop_topic};
use crate::common::*;

const T: Duration = Duration::from_secs(30);

fn code<T: std::fmt::Debug>(r: &ferrokafka::Result<T>) -> Option<ErrorCode> {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.code(),
    }
}

/// Asserts that a call was refused before sending.
fn invalid(e: Error) {
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

/// The highest version of API `key` broker `id` supports.
async fn broker_max(admin: &AdminClient, id: i32, key: i16) -> i16 {
    admin.broker_api_versions(id).await.unwrap().iter().find(|a| a.api_key == key).map(|a| a.broker_max).unwrap_or(-1)
}

/// Waits until the broker's metadata shows `topic` with `n` partitions: CreateTopics and
/// CreatePartitions answer once the controller committed, the broker's metadata follows.
async fn visible(admin: &AdminClient, topic: &str, n: usize) {
    eventually(&format!("{topic} with {n} partitions in the metadata"), T, || async {
        (admin.describe_topics([topic]).await.ok()?.pop()?.partitions.len() == n).then_some(())
    })
    .await;
}

/// A new single-node topic, once the metadata shows it.
async fn topic(prefix: &str, partitions: i32) -> String {
    let t = single_topic(prefix, partitions).await;
    visible(&single_admin().await, &t, partitions as usize).await;
    t
}

async fn first_broker(admin: &AdminClient) -> i32 {
    admin.describe_cluster().await.unwrap().brokers[0].id
}

/// Sends `records` (partition, timestamp) to `topic` and waits for every acknowledgement.
async fn produce(bootstrap: &str, topic: &str, records: &[(i32, i64)]) {
    let p = Producer::new(ProducerConfig::new(bootstrap)).await.unwrap();
    let mut acks = Vec::new();
    for (i, (part, ts)) in records.iter().enumerate() {
        let r = ProducerRecord::new(topic).partition(*part).timestamp(*ts).value(format!("v{i}"));
        acks.push(p.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
}

#[tokio::test]
async fn create_partitions_grows_topics_per_topic_and_refuses_bad_counts() {
    let admin = single_admin().await;
    let (a, b) = (topic("adm-cp-a", 1).await, topic("adm-cp-b", 2).await);
    let broker = first_broker(&admin).await;

    // Validate only: accepted, nothing added.
    let r = admin
        .create_partitions([NewPartitions::increase_to(&a, 5)], CreatePartitionsOptions { validate_only: true, ..Default::default() })
        .await
        .unwrap();
    r[0].result.as_ref().unwrap();
    assert_eq!(admin.describe_topics([&a]).await.unwrap()[0].partitions.len(), 1);

    // `a` grows to 3 with an explicit assignment; `b` cannot "grow" to 1.
    let r = admin
        .create_partitions(
            [NewPartitions::increase_to(&a, 3).assignments(vec![vec![broker], vec![broker]]), NewPartitions::increase_to(&b, 1)],
            CreatePartitionsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].name.as_str(), r[1].name.as_str()), (a.as_str(), b.as_str()));
    r[0].result.as_ref().unwrap();
    assert_eq!(code(&r[1].result), Some(ErrorCode::InvalidPartitions), "{:?}", r[1].result);
    visible(&admin, &a, 3).await;
    let d = admin.describe_topics([&a, &b]).await.unwrap();
    assert_eq!(d[0].partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(d[0].partitions.iter().all(|p| p.replicas == vec![broker]));
    assert_eq!(d[1].partitions.len(), 2);

    // An assignment naming a broker that does not exist is the broker's error.
    let r = admin
        .create_partitions([NewPartitions::increase_to(&a, 4).assignments(vec![vec![4242]])], Default::default())
        .await
        .unwrap();
    assert_eq!(code(&r[0].result), Some(ErrorCode::InvalidReplicaAssignment), "{:?}", r[0].result);

    // Refused before sending.
    for bad in [NewPartitions::increase_to(&a, 0), NewPartitions::increase_to(&a, -3), NewPartitions::increase_to(&a, 4).assignments(vec![vec![]])] {
        let e = admin.create_partitions([bad], Default::default()).await.unwrap_err();
        invalid(e);
    }
    let d = admin.describe_topics([&a]).await.unwrap();
    assert_eq!(d[0].partitions.len(), 3, "{d:?}");
}

#[tokio::test]
async fn topics_are_described_and_deleted_by_id_with_authorized_operations() {
    let admin = single_admin().await;
    let (a, b) = (topic("adm-id-a", 2).await, topic("adm-id-b", 1).await);
    let missing = unique("adm-id-missing");

    // By name, per topic, with authorized operations (the single node's listener principal
    // may do everything a topic supports).
    let opts = DescribeTopicsOptions { include_authorized_operations: true, ..Default::default() };
    let r = admin.describe_topics_with([&a, &missing], opts.clone()).await.unwrap();
    let da = r[0].as_ref().unwrap();
    assert_eq!(da.description.name, a);
    assert_eq!(da.description.partitions.len(), 2);
    use AclOperation::*;
    let all_topic_ops: BTreeSet<AclOperation> =
        [Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs].into_iter().collect();
    assert_eq!(da.authorized_operations.as_ref(), Some(&all_topic_ops));
    assert_eq!(code(&r[1]), Some(ErrorCode::UnknownTopicOrPartition));
    let plain = admin.describe_topics_with([&a], DescribeTopicsOptions::default()).await.unwrap();
    assert_eq!(plain[0].as_ref().unwrap().authorized_operations, None);

    // By id: the same description; an unknown id is its own error.
    let id_a = da.description.topic_id.expect("topic id");
    let id_b = admin.describe_topics([&b]).await.unwrap()[0].topic_id.unwrap();
    let unknown = TopicId([7; 16]);
    let r = admin.describe_topics_by_id([id_a, unknown, id_b], opts).await.unwrap();
    let ra = r[0].as_ref().unwrap();
    assert_eq!(ra.description, da.description);
    assert_eq!(ra.authorized_operations.as_ref(), Some(&all_topic_ops));
    assert_eq!(code(&r[1]), Some(ErrorCode::UnknownTopicId));
    assert_eq!(r[2].as_ref().unwrap().description.name, b);

    // Delete by id: `a` goes, `b` stays, the unknown id is UNKNOWN_TOPIC_ID.
    let r = admin.delete_topics_by_id([id_a, unknown], DeleteTopicsOptions::default()).await.unwrap();
    assert_eq!(r[0].topic_id, id_a);
    r[0].result.as_ref().unwrap();
    assert_eq!(code(&r[1].result), Some(ErrorCode::UnknownTopicId));
    eventually("topic a gone", T, || async {
        let l = admin.list_topics(false).await.ok()?;
        (!l.contains(&a) && l.contains(&b)).then_some(())
    })
    .await;
    let r = admin.describe_topics_by_id([id_a], Default::default()).await.unwrap();
    assert_eq!(code(&r[0]), Some(ErrorCode::UnknownTopicId));
    let e = admin.delete_topics_by_id([TopicId([0; 16])], Default::default()).await.unwrap_err();
    invalid(e);
}

#[tokio::test]
async fn list_offsets_answers_every_spec_per_partition() {
    let admin = single_admin().await;
    let topic = topic("adm-lo", 1).await;
    let tp = TopicPartition::new(&topic, 0);
    // Offsets 0, 1, 2 with timestamps out of order: the max is at offset 1.
    produce(&single_bootstrap(), &topic, &[(0, 1_000), (0, 5_000), (0, 3_000)]).await;
    let broker = first_broker(&admin).await;
    let lo_max = broker_max(&admin, broker, 2).await;

    let specs = [
        OffsetSpec::Earliest,
        OffsetSpec::Latest,
        OffsetSpec::MaxTimestamp,
        OffsetSpec::ForTimestamp(2_500),
        OffsetSpec::ForTimestamp(9_999),
        OffsetSpec::EarliestLocal,
        OffsetSpec::LatestTiered,
    ];
    let mut got = Vec::new();
    for spec in specs {
        let r = admin.list_offsets([(tp.clone(), spec)], ListOffsetsOptions::default()).await.unwrap();
        assert_eq!(r.len(), 1);
        got.push((spec, r.into_values().next().unwrap()));
    }
    let need = |s: OffsetSpec| match s {
        OffsetSpec::MaxTimestamp => 7,
        OffsetSpec::EarliestLocal => 8,
        OffsetSpec::LatestTiered => 9,
        _ => 1,
    };
    for (spec, r) in got {
        if lo_max < need(spec) {
            let e = r.unwrap_err();
            assert!(matches!(&e, Error::UnsupportedVersion { .. }) && e.to_string().contains("OffsetSpec::"), "{spec:?}: {e}");
            continue;
        }
        let i = r.unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        let want = match spec {
            OffsetSpec::Earliest | OffsetSpec::EarliestLocal => (0, -1),
            OffsetSpec::Latest => (3, -1),
            OffsetSpec::MaxTimestamp => (1, 5_000),
            OffsetSpec::ForTimestamp(2_500) => (1, 5_000),
            OffsetSpec::ForTimestamp(_) => (-1, -1),
            OffsetSpec::LatestTiered => (-1, -1),
        };
        assert_eq!((i.offset, i.timestamp), want, "{spec:?}: {i:?}");
        if matches!(spec, OffsetSpec::MaxTimestamp | OffsetSpec::ForTimestamp(2_500)) {
            assert_eq!(i.leader_epoch, Some(0), "{spec:?}");
        }
    }

    // Several partitions in one call: an unknown partition and topic are their own errors.
    let other = unique("adm-lo-missing");
    let r = admin
        .list_offsets(
            [
                (tp.clone(), OffsetSpec::Latest),
                (TopicPartition::new(&topic, 7), OffsetSpec::Latest),
                (TopicPartition::new(&other, 0), OffsetSpec::Earliest),
            ],
            ListOffsetsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r[&tp].as_ref().unwrap().offset, 3);
    assert_eq!(code(&r[&TopicPartition::new(&topic, 7)]), Some(ErrorCode::UnknownTopicOrPartition));
    assert_eq!(code(&r[&TopicPartition::new(&other, 0)]), Some(ErrorCode::UnknownTopicOrPartition));

    let e = admin.list_offsets([(tp.clone(), OffsetSpec::ForTimestamp(-7))], Default::default()).await.unwrap_err();
    invalid(e);
}

#[tokio::test]
async fn list_offsets_latest_stops_at_the_last_stable_offset_under_read_committed() {
    let admin = single_admin().await;
    let topic = topic("adm-lo-txn", 1).await;
    let tp = TopicPartition::new(&topic, 0);
    let p = Producer::new(
        ProducerConfig::new(single_bootstrap()).transactional_id(unique("adm-lo-tid")).transaction_timeout(T),
    )
    .await
    .unwrap();
    p.init_transactions(T).await.unwrap();
    // Offsets 0, 1 committed (marker at 2), then 3, 4, 5 in an open transaction.
    p.begin_transaction().unwrap();
    for i in 0..2 {
        let _ = p.send(ProducerRecord::new(&topic).partition(0).value(format!("c{i}"))).await.unwrap();
    }
    p.commit_transaction(T).await.unwrap();
    p.begin_transaction().unwrap();
    for i in 0..3 {
        let _ = p.send(ProducerRecord::new(&topic).partition(0).value(format!("o{i}"))).await.unwrap();
    }
    p.flush().await.unwrap();
    let latest = |iso| {
        let admin = admin.clone();
        let tp = tp.clone();
        async move {
            let r = admin
                .list_offsets([(tp.clone(), OffsetSpec::Latest)], ListOffsetsOptions { isolation_level: iso, timeout: None })
                .await
                .unwrap();
            r[&tp].as_ref().unwrap().offset
        }
    };
    // The high watermark covers the open transaction's records; the last stable offset
    // stops at its first record.
    eventually("the high watermark at 6", T, || async { (latest(IsolationLevel::ReadUncommitted).await == 6).then_some(()) }).await;
    assert_eq!(latest(IsolationLevel::ReadCommitted).await, 3);
    p.abort_transaction(T).await.unwrap();
    // Once the abort marker (offset 6) is written, the last stable offset passes it.
    eventually("the last stable offset at 7", T, || async { (latest(IsolationLevel::ReadCommitted).await == 7).then_some(()) }).await;
    assert_eq!(latest(IsolationLevel::ReadUncommitted).await, 7);
}

#[tokio::test]
async fn delete_records_moves_the_low_watermark_per_partition() {
    let admin = single_admin().await;
    let topic = topic("adm-dr", 2).await;
    let recs: Vec<(i32, i64)> = (0..10).map(|i| (i % 2, 1_000 + i as i64)).collect();
    produce(&single_bootstrap(), &topic, &recs).await;
    let (p0, p1, p9) = (TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1), TopicPartition::new(&topic, 9));

    let r = admin
        .delete_records([(p0.clone(), 3), (p1.clone(), -1), (p9.clone(), 1)], DeleteRecordsOptions::default())
        .await
        .unwrap();
    assert_eq!(*r[&p0].as_ref().unwrap(), 3);
    assert_eq!(*r[&p1].as_ref().unwrap(), 5, "-1 deletes up to the high watermark");
    assert_eq!(code(&r[&p9]), Some(ErrorCode::UnknownTopicOrPartition));

    // The effect: the log start offsets moved.
    let earliest = admin
        .list_offsets([(p0.clone(), OffsetSpec::Earliest), (p1.clone(), OffsetSpec::Earliest)], Default::default())
        .await
        .unwrap();
    assert_eq!(earliest[&p0].as_ref().unwrap().offset, 3);
    assert_eq!(earliest[&p1].as_ref().unwrap().offset, 5);

    // Past the high watermark: the broker's error; below -1: refused before sending.
    let r = admin.delete_records([(p0.clone(), 100)], Default::default()).await.unwrap();
    assert_eq!(code(&r[&p0]), Some(ErrorCode::OffsetOutOfRange));
    let e = admin.delete_records([(p0.clone(), -2)], Default::default()).await.unwrap_err();
    invalid(e);
}

#[tokio::test]
async fn log_dirs_are_described_per_broker_and_per_replica_and_moves_answered() {
    let admin = single_admin().await;
    let topic = topic("adm-ld", 1).await;
    produce(&single_bootstrap(), &topic, &[(0, 1), (0, 2), (0, 3)]).await;
    let broker = first_broker(&admin).await;
    let tp = TopicPartition::new(&topic, 0);

    let all = admin.describe_log_dirs(None, Default::default()).await.unwrap();
    assert_eq!(all.keys().copied().collect::<Vec<_>>(), vec![broker]);
    let dirs = all[&broker].as_ref().unwrap();
    let (path, dir) = dirs.iter().find(|(_, d)| d.replicas.contains_key(&tp)).expect("a log dir holds the replica");
    assert!(dir.error.is_none());
    let info = dir.replicas[&tp];
    assert!(info.size > 0 && !info.is_future && info.offset_lag == 0, "{info:?}");
    if broker_max(&admin, broker, 35).await >= 4 {
        assert!(dir.total_bytes.unwrap() >= dir.usable_bytes.unwrap() && dir.usable_bytes.unwrap() > 0, "{dir:?}");
    }

    // Given brokers: an unknown one is its own error.
    let some = admin.describe_log_dirs(Some(&[broker, 4242]), ReplicaOptions { timeout: Some(Duration::from_secs(3)) }).await.unwrap();
    assert!(some[&broker].as_ref().unwrap().contains_key(path));
    assert!(some[&4242].is_err());

    // Per replica: the current dir; a replica the broker does not hold has none.
    let here = TopicPartitionReplica::new(&topic, 0, broker);
    let absent = TopicPartitionReplica::new(&topic, 5, broker);
    let r = admin.describe_replica_log_dirs([here.clone(), absent.clone()], Default::default()).await.unwrap();
    let h = r[&here].as_ref().unwrap();
    assert_eq!(h.current_replica_log_dir.as_deref(), Some(path.as_str()));
    assert_eq!((h.current_replica_offset_lag, h.future_replica_log_dir.as_deref()), (0, None));
    let a = r[&absent].as_ref().unwrap();
    assert_eq!((a.current_replica_log_dir.as_deref(), a.future_replica_log_dir.as_deref()), (None, None));

    // A move to its own dir is accepted (nothing to move), a move to a directory the broker
    // does not have is LOG_DIR_NOT_FOUND.
    let r = admin.alter_replica_log_dirs([(here.clone(), path.clone())], Default::default()).await.unwrap();
    r[&here].as_ref().unwrap();
    let r = admin.alter_replica_log_dirs([(here.clone(), format!("{path}-nowhere"))], Default::default()).await.unwrap();
    assert_eq!(code(&r[&here]), Some(ErrorCode::LogDirNotFound));
    let r = admin.describe_replica_log_dirs([here.clone()], Default::default()).await.unwrap();
    assert_eq!(r[&here].as_ref().unwrap().current_replica_log_dir.as_deref(), Some(path.as_str()));
    assert_eq!(r[&here].as_ref().unwrap().future_replica_log_dir, None);

    // The local single node has a second log dir (scripts/kafka-local.sh): the replica moves
    // there (a future replica catches up, then takes over), and its records move with it.
    let others: Vec<&String> = dirs.keys().filter(|d| *d != path).collect();
    if std::env::var("FERROKAFKA_EXTERNAL").as_deref() == Ok("1") && others.is_empty() {
        return; // an external broker with one log dir: nothing to move to
    }
    let other = others.first().unwrap_or_else(|| panic!("the test broker has two log dirs: {dirs:?}")).to_string();
    let r = admin.alter_replica_log_dirs([(here.clone(), other.clone())], Default::default()).await.unwrap();
    r[&here].as_ref().unwrap();
    eventually("the replica in the other log dir", Duration::from_secs(30), || async {
        let r = admin.describe_replica_log_dirs([here.clone()], Default::default()).await.ok()?;
        let h = r.get(&here)?.as_ref().ok()?.clone();
        (h.current_replica_log_dir.as_deref() == Some(other.as_str()) && h.future_replica_log_dir.is_none()).then_some(())
    })
    .await;
    let all = admin.describe_log_dirs(Some(&[broker]), Default::default()).await.unwrap();
    let dirs = all[&broker].as_ref().unwrap();
    assert!(dirs[&other].replicas.contains_key(&tp) && !dirs[path].replicas.contains_key(&tp), "{dirs:?}");
    assert!(dirs[&other].replicas[&tp].size > 0);
    let end = admin.list_offsets([(tp.clone(), OffsetSpec::Latest)], Default::default()).await.unwrap();
    assert_eq!(end[&tp].as_ref().unwrap().offset, 3, "the records moved with the replica");
}

#[tokio::test]
async fn elections_and_reassignments_answer_per_partition_on_one_node() {
    let admin = single_admin().await;
    let topic = topic("adm-el1", 2).await;
    let (p0, p1) = (TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1));
    let missing = TopicPartition::new(unique("adm-el1-missing"), 0);

    // The only replica leads already: ELECTION_NOT_NEEDED, as in Java.
    let r = admin.elect_leaders(ElectionType::Preferred, Some(&[p0.clone(), missing.clone()]), Default::default()).await.unwrap();
    assert!(election_not_needed(&r[&p0]), "{:?}", r[&p0]);
    assert_eq!(code(&r[&missing]), Some(ErrorCode::UnknownTopicOrPartition));
    let r = admin.elect_leaders(ElectionType::Unclean, Some(&[p1.clone()]), Default::default()).await.unwrap();
    assert!(election_not_needed(&r[&p1]), "{:?}", r[&p1]);

    // Nothing in progress: cancelling is NO_REASSIGNMENT_IN_PROGRESS, a target broker that
    // does not exist is refused by the controller, the listing is empty.
    let r = admin
        .alter_partition_reassignments([(p0.clone(), None), (p1.clone(), Some(vec![4242]))], Default::default())
        .await
        .unwrap();
    assert_eq!(code(&r[&p0]), Some(ErrorCode::NoReassignmentInProgress));
    assert_eq!(code(&r[&p1]), Some(ErrorCode::InvalidReplicaAssignment));
    assert!(admin.list_partition_reassignments(Some(&[p0.clone(), p1.clone()]), Default::default()).await.unwrap().is_empty());
    let e = admin.alter_partition_reassignments([(p0.clone(), Some(vec![]))], Default::default()).await.unwrap_err();
    invalid(e);
    let e = admin.elect_leaders(ElectionType::Preferred, Some(&[TopicPartition::new(&topic, -1)]), Default::default()).await.unwrap_err();
    invalid(e);
}

#[tokio::test]
async fn cluster_health_finds_partitions_under_their_topic_min_isr() {
    let admin = single_admin().await;
    let healthy = topic("adm-h-ok", 2).await;
    let strict = unique("adm-h-minisr");
    admin.create_topic(NewTopic::new(&strict, 3, 1).config("min.insync.replicas", "2")).await.unwrap();
    visible(&admin, &strict, 3).await;
    let missing = unique("adm-h-missing");
    let h = admin
        .cluster_health(ClusterHealthOptions { topics: Some(vec![healthy.clone(), strict.clone(), missing.clone()]), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(h.live_brokers.len(), 1);
    let ok = h.topics[&healthy].as_ref().unwrap();
    assert!(ok.is_healthy(), "{ok:?}");
    assert_eq!(*ok.min_insync_replicas.as_ref().unwrap(), 1, "the single node's default");
    let s = h.topics[&strict].as_ref().unwrap();
    assert_eq!(*s.min_insync_replicas.as_ref().unwrap(), 2);
    assert_eq!(s.under_min_isr.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(s.under_replicated.is_empty() && s.offline.is_empty() && s.leaderless.is_empty(), "{s:?}");
    assert_eq!(code(&h.topics[&missing]), Some(ErrorCode::UnknownTopicOrPartition));
    let mut bad: Vec<&str> = h.unhealthy_topics();
    bad.sort();
    let mut want = vec![strict.as_str(), missing.as_str()];
    want.sort();
    assert_eq!(bad, want);

    // All topics: ours are among them, internal ones only when asked for.
    let all = admin.cluster_health(Default::default()).await.unwrap();
    assert!(all.topics.contains_key(&strict) && !all.topics.keys().any(|t| t.starts_with("__")));
}

/// A killed cluster node, restarted when dropped (also when the test fails).
struct KilledNode(Option<i32>);

impl KilledNode {
    fn kill(node: i32) -> KilledNode {
        cluster_ctl(&["kill", &node.to_string()]);
        KilledNode(Some(node))
    }

    fn restart(mut self) {
        if let Some(n) = self.0.take() {
            cluster_ctl(&["restart", &n.to_string()]);
        }
    }
}

impl Drop for KilledNode {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            eprintln!("restarting killed cluster node {n} after a failure");
            cluster_ctl(&["restart", &n.to_string()]);
        }
    }
}

/// The partitions of `topic`, once the broker that answers knows it (a broker's metadata
/// follows the controller's with a delay).
async fn partitions(admin: &AdminClient, topic: &str) -> Vec<ferrokafka::admin::PartitionInfo> {
    eventually(&format!("{topic} in the metadata"), T, || async { Some(admin.describe_topics([topic]).await.ok()?.pop()?.partitions) })
        .await
}

/// One node down and back, for three checks at once (one restart is most of the time of
/// a cluster test): cluster health sees the under-replicated partitions while it is down and
/// none after; a reassignment onto it is listed in progress while it is down (cancelled,
/// then started again) and done after; a preferred election gives it back the leadership
/// it lost; unregistered while down, it registers again when it returns.
#[tokio::test]
async fn with_a_node_down_and_back_health_reassignments_and_elections_follow() {
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let no_wait = ReplicaOptions::default();

    // `moved`: one partition on two nodes, a and b; c is the node that goes down.
    let moved = unique("adm-ra");
    admin.create_topic(NewTopic::new(&moved, 1, 2)).await.unwrap();
    let tp = TopicPartition::new(&moved, 0);
    let old = eventually("a full ISR", T, || async {
        let p = admin.describe_topics([&moved]).await.ok()?.pop()?.partitions.pop()?;
        (p.isr.len() == 2).then_some(p.replicas)
    })
    .await;
    let (a, b) = (old[0], old[1]);
    let c = (1..=3).find(|n| !old.contains(n)).unwrap();

    // KIP-860: a reassignment that would change the replication factor, refused when the
    // caller forbids it (AlterPartitionReassignments v1, Kafka 4.0+; before, the option is
    // refused here as unsupported).
    let no_rf_change = AlterPartitionReassignmentsOptions { allow_replication_factor_change: false, ..Default::default() };
    let r = admin.alter_partition_reassignments([(tp.clone(), Some(vec![a, b, c]))], no_rf_change).await;
    if broker_max(&admin, a, 45).await >= 1 {
        let r = r.unwrap();
        assert_eq!(code(&r[&tp]), Some(ErrorCode::InvalidReplicationFactor), "{r:?}");
    } else {
        let e = r.unwrap_err();
        assert!(matches!(&e, Error::UnsupportedVersion { .. }) && e.to_string().contains("allow_replication_factor_change"), "{e}");
    }
    assert_eq!(partitions(&admin, &moved).await[0].replicas, old);

    // `elected`: three partitions on all nodes; partition 0 prefers c (reordered by a
    // reassignment, which completes at once with every node up) and c leads it.
    let elected = unique("adm-el3");
    crate::cluster::replicated_topic(&admin, &elected, 3).await;
    let e_tps = tps(&elected, 3);
    let order = vec![c, a, b];
    let r = admin.alter_partition_reassignments([(e_tps[0].clone(), Some(order.clone()))], Default::default()).await.unwrap();
    r[&e_tps[0]].as_ref().unwrap();
    eventually("partition 0 reordered", T, || async {
        let listed = admin.list_partition_reassignments(Some(&e_tps), no_wait.clone()).await.ok()?;
        let p = partitions(&admin, &elected).await;
        (listed.is_empty() && p[0].replicas == order && p[0].isr.len() == 3).then_some(())
    })
    .await;
    let r = admin.elect_leaders(ElectionType::Preferred, Some(&e_tps[..1]), Default::default()).await.unwrap();
    assert!(r[&e_tps[0]].is_ok() || election_not_needed(&r[&e_tps[0]]), "{r:?}");
    let only = ClusterHealthOptions { topics: Some(vec![moved.clone(), elected.clone()]), ..Default::default() };
    eventually("c leading partition 0, both topics healthy", T, || async {
        let led = partitions(&admin, &elected).await[0].leader == Some(c);
        (led && admin.cluster_health(only.clone()).await.ok()?.is_healthy()).then_some(())
    })
    .await;

    let killed = KilledNode::kill(c);
    // While c is down: every partition of `elected` under-replicated and with an offline
    // replica, none leaderless (RF 3), none under min ISR 2; `moved` is not on c.
    let h = eventually("under-replicated partitions", Duration::from_secs(40), || async {
        let h = admin.cluster_health(only.clone()).await.ok()?;
        let t = h.topics[&elected].as_ref().ok()?.clone();
        (t.under_replicated.len() == 3).then_some(h)
    })
    .await;
    let e = h.topics[&elected].as_ref().unwrap();
    assert_eq!(e.offline.len(), 3, "{e:?}");
    assert!(e.leaderless.is_empty() && e.under_min_isr.is_empty(), "{e:?}");
    assert!(e.under_replicated.iter().all(|p| !p.isr.contains(&c)));
    assert!(h.topics[&moved].as_ref().unwrap().is_healthy());
    assert_eq!(h.unhealthy_topics(), vec![elected.as_str()]);
    assert!(!h.live_brokers.contains(&c));

    // If c was the active controller, wait for the new one.
    eventually("the controller answering", Duration::from_secs(60), || async {
        admin.list_partition_reassignments(None, ReplicaOptions { timeout: Some(Duration::from_secs(3)) }).await.ok()
    })
    .await;
    // A move of `moved` onto c cannot finish while c is down: listed in progress.
    let target = vec![a, c];
    let r = admin.alter_partition_reassignments([(tp.clone(), Some(target.clone()))], Default::default()).await.unwrap();
    r[&tp].as_ref().unwrap();
    let listed = admin.list_partition_reassignments(Some(&[tp.clone()]), no_wait.clone()).await.unwrap();
    let ra = &listed[&tp];
    assert_eq!((ra.adding_replicas.clone(), ra.removing_replicas.clone()), (vec![c], vec![b]), "{ra:?}");
    assert_eq!(ra.replicas.iter().copied().collect::<BTreeSet<_>>(), [a, b, c].into_iter().collect());
    assert!(admin.list_partition_reassignments(None, no_wait.clone()).await.unwrap().contains_key(&tp));
    // Cancelled: the old replica set again, nothing listed.
    let r = admin.alter_partition_reassignments([(tp.clone(), None)], Default::default()).await.unwrap();
    r[&tp].as_ref().unwrap();
    assert!(!admin.list_partition_reassignments(Some(&[tp.clone()]), no_wait.clone()).await.unwrap().contains_key(&tp));
    eventually("the old replicas back", T, || async {
        (partitions(&admin, &moved).await[0].replicas == old).then_some(())
    })
    .await;
    // Again; it completes once c is back.
    let r = admin.alter_partition_reassignments([(tp.clone(), Some(target.clone()))], Default::default()).await.unwrap();
    r[&tp].as_ref().unwrap();
    assert!(admin.list_partition_reassignments(Some(&[tp.clone()]), no_wait.clone()).await.unwrap().contains_key(&tp));

    // unregister_broker: c, fenced while it is down, is unregistered; on Kafka 4.x
    // (DescribeCluster v2 lists fenced brokers) it is then no longer listed at all. Coming
    // back, it registers again (all_three_up), as Kafka documents for a running broker.
    let fenced = DescribeClusterOptions { include_fenced_brokers: true, ..Default::default() };
    let lists_fenced = broker_max(&admin, a, 60).await >= 2;
    if lists_fenced {
        eventually("c listed as fenced", Duration::from_secs(40), || async {
            admin.describe_cluster_with(fenced.clone()).await.ok()?.fenced_brokers.iter().any(|n| n.id == c).then_some(())
        })
        .await;
    }
    admin.unregister_broker(c, Default::default()).await.unwrap();
    if lists_fenced {
        eventually("c unregistered", Duration::from_secs(20), || async {
            let d = admin.describe_cluster_with(fenced.clone()).await.ok()?;
            (!d.fenced_brokers.iter().chain(&d.brokers).any(|n| n.id == c)).then_some(())
        })
        .await;
    }

    killed.restart();
    all_three_up(&admin).await;
    eventually("the reassignment done", Duration::from_secs(40), || async {
        let listed: BTreeMap<_, _> = admin.list_partition_reassignments(Some(&[tp.clone()]), no_wait.clone()).await.ok()?;
        let p = partitions(&admin, &moved).await;
        (listed.is_empty() && p[0].replicas == target && p[0].isr.len() == 2).then_some(())
    })
    .await;
    eventually("healthy topics again", Duration::from_secs(40), || async {
        admin.cluster_health(only.clone()).await.ok()?.is_healthy().then_some(())
    })
    .await;

    // c is back in the ISR but no longer leads partition 0; a preferred election of every
    // partition (`None`) gives it back, and then nothing is left to elect.
    let now = partitions(&admin, &elected).await;
    assert_ne!(now[0].leader, Some(c), "{now:?}");
    let r = admin.elect_leaders(ElectionType::Preferred, None, Default::default()).await.unwrap();
    r.get(&e_tps[0]).unwrap_or_else(|| panic!("no result for {}: {r:?}", e_tps[0])).as_ref().unwrap();
    for (tp, res) in &r {
        assert!(res.is_ok() || election_not_needed(res), "{tp}: {res:?}");
    }
    eventually("preferred leaders", T, || async {
        partitions(&admin, &elected).await.iter().all(|p| p.leader == Some(p.replicas[0])).then_some(())
    })
    .await;
    assert_eq!(partitions(&admin, &elected).await[0].leader, Some(c));
    let r = admin.elect_leaders(ElectionType::Preferred, Some(&e_tps), Default::default()).await.unwrap();
    assert!(r.values().all(election_not_needed), "{r:?}");
    drop_topic(&admin, &moved).await;
    drop_topic(&admin, &elected).await;
}

/// An unclean election on the real cluster: partition on two nodes, l leading and f
/// following. f goes down, the ISR shrinks to l, records land on l alone; then l goes down
/// too and f comes back. f is not in the ISR, so no clean election can make it leader (the
/// partition stays leaderless, unclean.leader.election.enable being false); a preferred
/// election is refused, an unclean one makes f the leader, and the records written while f
/// was down are gone: the log ends where f's copy ended. When l returns it follows f and
/// truncates its own log to match.
#[tokio::test]
async fn unclean_election_makes_an_out_of_sync_replica_leader_and_loses_what_it_missed() {
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let topic = unique("adm-unclean");
    let new = NewTopic::new(&topic, 1, 2)
        .config("min.insync.replicas", "1")
        .config("unclean.leader.election.enable", "false");
    admin.create_topic(new).await.unwrap();
    let tp = TopicPartition::new(&topic, 0);
    let (l, f) = eventually("a leader and a full ISR", T, || async {
        let p = admin.describe_topics([&topic]).await.ok()?.pop()?.partitions.pop()?;
        let l = p.leader?;
        (p.isr.len() == 2).then(|| (l, *p.replicas.iter().find(|r| **r != l).unwrap()))
    })
    .await;
    let end = |admin: AdminClient, tp: TopicPartition| async move {
        admin.list_offsets([(tp.clone(), OffsetSpec::Latest)], ListOffsetsOptions::default()).await.ok()?[&tp]
            .as_ref()
            .ok()
            .map(|i| i.offset)
    };
    // Three records on both replicas (acks=all with the full ISR).
    produce(&cluster_bootstrap(), &topic, &[(0, 1_000), (0, 1_001), (0, 1_002)]).await;

    let follower_down = KilledNode::kill(f);
    eventually("the ISR shrunk to the leader", Duration::from_secs(40), || async {
        let p = partitions(&admin, &topic).await.pop()?;
        (p.isr == vec![l]).then_some(())
    })
    .await;
    // Two records only l has.
    produce(&cluster_bootstrap(), &topic, &[(0, 2_000), (0, 2_001)]).await;
    assert_eq!(end(admin.clone(), tp.clone()).await, Some(5));

    // l down as well (two of three controllers down: no quorum until f returns).
    let leader_down = KilledNode::kill(l);
    follower_down.restart();
    let no_leader = eventually("f back, the partition leaderless", Duration::from_secs(90), || async {
        let live = admin.describe_cluster().await.ok()?.brokers.iter().any(|b| b.id == f);
        let p = partitions(&admin, &topic).await.pop()?;
        (live && p.leader.is_none()).then_some(p)
    })
    .await;
    assert!(!no_leader.isr.contains(&f), "{no_leader:?}");

    // f is not in the ISR: a preferred election cannot choose it.
    let r = admin.elect_leaders(ElectionType::Preferred, Some(&[tp.clone()]), Default::default()).await.unwrap();
    assert!(r[&tp].is_err(), "{r:?}");
    let r = admin.elect_leaders(ElectionType::Unclean, Some(&[tp.clone()]), Default::default()).await.unwrap();
    r[&tp].as_ref().unwrap_or_else(|e| panic!("unclean election: {e}"));
    let led = eventually("f leading", T, || async {
        let p = partitions(&admin, &topic).await.pop()?;
        (p.leader == Some(f)).then_some(p)
    })
    .await;
    assert_eq!(led.isr, vec![f], "{led:?}");
    // The log is f's: the three records, not the two written while f was down.
    let got = eventually("the log end from f", T, || end(admin.clone(), tp.clone())).await;
    assert_eq!(got, 3, "the records f missed are gone");
    let c = ferrokafka::consumer::Consumer::new(ferrokafka::consumer::ConsumerConfig::new(cluster_bootstrap()))
        .await
        .unwrap();
    c.assign(vec![tp.clone()]).unwrap();
    c.seek(&tp, 0).unwrap();
    let mut stamps = Vec::new();
    while stamps.len() < 3 {
        let recs = tokio::time::timeout(T, c.poll(Duration::from_secs(1))).await.unwrap().unwrap();
        stamps.extend(recs.iter().map(|r| r.timestamp));
    }
    assert_eq!(stamps, vec![1_000, 1_001, 1_002]);

    // l returns, follows f and truncates: the ISR is full again, the log still ends at 3.
    leader_down.restart();
    all_three_up(&admin).await;
    eventually("l back in the ISR", Duration::from_secs(60), || async {
        let p = partitions(&admin, &topic).await.pop()?;
        (p.isr.len() == 2 && p.leader == Some(f)).then_some(())
    })
    .await;
    assert_eq!(end(admin.clone(), tp.clone()).await, Some(3));
    drop_topic(&admin, &topic).await;
}
