//! Admin client integration tests (issue 13): groups.
//!
//! Consumer groups (list, describe classic and KIP-848 groups, delete, offsets, remove
//! members), lag as `kafka-consumer-groups.sh --describe` prints it, and offset-reset plans
//! compared with the Java tool's `--reset-offsets --dry-run` (run by scripts/kafka-cli.sh
//! from the broker version's kafka-tools jar).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokafka::admin::{
    DescribeGroupsOptions, GroupCallOptions, GroupState, GroupType, ListConsumerGroupOffsetsOptions,
    ListConsumerGroupOffsetsSpec, ListGroupsOptions, MemberToRemove, RemoveMembersOptions,
};
use ferrokafka::consumer::{Consumer, ConsumerConfig, GroupProtocol, OffsetAndMetadata, OffsetReset, TopicPartition};
use ferrokafka::error::ErrorCode;
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::Error;
use tokio::task::JoinHandle;

use crate::common::{eventually, single_admin, single_bootstrap, single_topic, tps, unique};

/// Whether the broker under test has the KIP-848 consumer protocol on (Kafka 4.x; 3.9 has
/// it off). `KAFKA_VERSION` is what scripts/test.sh started.
fn broker_has_kip848() -> bool {
    !std::env::var("KAFKA_VERSION").unwrap_or_else(|_| "4.4.0".into()).starts_with("3.")
}

/// `per` records into each of `partitions` partitions of `topic`, timestamps `ts0 + i`.
async fn produce(topic: &str, partitions: i32, per: usize, ts0: i64) {
    let producer = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    let mut futs = Vec::new();
    for p in 0..partitions {
        for i in 0..per {
            let r = ProducerRecord::new(topic).partition(p).value(format!("{p}-{i}")).timestamp(ts0 + i as i64);
            futs.push(producer.send(r).await.unwrap());
        }
    }
    for f in futs {
        f.await.unwrap();
    }
    producer.close(Duration::from_secs(30)).await.unwrap();
}

fn consumer_config(group: &str, client_id: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(single_bootstrap()).group_id(group).auto_offset_reset(OffsetReset::Earliest).enable_auto_commit(false);
    c.client = c.client.client_id(client_id);
    c
}

/// A group member polling in its own task until stopped.
struct Member {
    consumer: Arc<Consumer>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Member {
    /// Subscribes to `topic` and polls until it owns `owns` partitions.
    async fn start(config: ConsumerConfig, topic: &str, owns: usize) -> Member {
        let consumer = Arc::new(Consumer::new(config).await.unwrap());
        consumer.subscribe([topic.to_owned()]).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (c, stop) = (consumer.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let _ = c.poll(Duration::from_millis(100)).await;
                }
            })
        };
        let c = consumer.clone();
        eventually("the member's assignment", Duration::from_secs(30), || {
            let c = c.clone();
            async move { (c.assignment().len() == owns).then_some(()) }
        })
        .await;
        Member { consumer, stop, task }
    }

    /// Stops polling (the member stays in the group until closed or its session ends).
    async fn pause(&self) {
        self.stop.store(true, Ordering::Relaxed);
        while !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn close(self) {
        self.pause().await;
        self.consumer.close().await.unwrap();
    }
}

/// The offset of the first record `c` receives from each of `partitions` partitions.
async fn first_offsets(c: &Consumer, partitions: usize) -> BTreeMap<i32, i64> {
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let t0 = std::time::Instant::now();
    while first.len() < partitions {
        assert!(t0.elapsed() < Duration::from_secs(30), "no records of every partition: {first:?}");
        for r in c.poll(Duration::from_millis(200)).await.unwrap() {
            first.entry(r.partition).or_insert(r.offset);
        }
    }
    first
}

fn offsets(entries: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
    entries.iter().map(|(t, p, o)| (TopicPartition::new(*t, *p), OffsetAndMetadata::new(*o))).collect()
}

// ---- groups.rs ---------------------------------------------------------------------------

#[tokio::test]
async fn admin_groups_list_and_describe_classic_and_kip848_groups() {
    let admin = single_admin().await;
    let topic = single_topic("admgrp", 3).await;
    produce(&topic, 3, 5, 1_700_000_000_000).await;
    let classic = unique("admgrp-classic");
    let kip848 = unique("admgrp-848");
    let missing = unique("admgrp-missing");
    let a = Member::start(consumer_config(&classic, "fk-classic-client"), &topic, 3).await;
    let b = if broker_has_kip848() {
        Some(Member::start(consumer_config(&kip848, "fk-848-client").group_protocol(GroupProtocol::Consumer), &topic, 3).await)
    } else {
        None
    };

    // list_groups: both groups with their types and states; the filters filter.
    let all = admin.list_groups(ListGroupsOptions::default()).await.unwrap();
    assert!(all.errors.is_empty(), "{:?}", all.errors);
    let c = all.groups.iter().find(|g| g.group_id == classic).expect("classic group listed");
    assert_eq!(c.protocol_type, "consumer");
    assert_eq!(c.state, Some(GroupState::Stable));
    assert_eq!(c.group_type, Some(GroupType::Classic));
    if b.is_some() {
        let k = all.groups.iter().find(|g| g.group_id == kip848).expect("KIP-848 group listed");
        assert_eq!(k.group_type, Some(GroupType::Consumer));
        let only848 = admin
            .list_groups(ListGroupsOptions { types: vec![GroupType::Consumer], ..Default::default() })
            .await
            .unwrap();
        assert!(only848.groups.iter().any(|g| g.group_id == kip848));
        assert!(!only848.groups.iter().any(|g| g.group_id == classic));
    }
    // The types filter needs ListGroups v5: where the broker has it the filter filters,
    // else the call is UnsupportedVersion.
    let list_groups_max = admin.broker_api_versions(1).await.unwrap().iter().find(|a| a.name == "ListGroups").unwrap().broker_max;
    match admin.list_groups(ListGroupsOptions { types: vec![GroupType::Classic], ..Default::default() }).await {
        Ok(only_classic) => {
            assert!(list_groups_max >= 5);
            assert!(only_classic.groups.iter().any(|g| g.group_id == classic));
            assert!(!only_classic.groups.iter().any(|g| g.group_id == kip848));
            assert!(only_classic.groups.iter().all(|g| g.group_type == Some(GroupType::Classic)));
        }
        Err(e) => assert!(list_groups_max < 5 && matches!(e, Error::UnsupportedVersion { .. }), "{e}"),
    }
    let empty_only = admin.list_groups(ListGroupsOptions { states: vec![GroupState::Empty], ..Default::default() }).await.unwrap();
    assert!(!empty_only.groups.iter().any(|g| g.group_id == classic || g.group_id == kip848));
    assert!(empty_only.groups.iter().all(|g| g.state == Some(GroupState::Empty)));

    // describe_consumer_groups: per group, each with the right API.
    let asked = [classic.clone(), kip848.clone(), missing.clone(), String::new()];
    let opts = DescribeGroupsOptions { include_authorized_operations: true, timeout: None };
    let described = admin.describe_consumer_groups(&asked, opts.clone()).await.unwrap();
    assert_eq!(described.iter().map(|r| r.group_id.clone()).collect::<Vec<_>>(), asked);
    let d = described[0].result.as_ref().expect("classic group described");
    assert_eq!((d.group_type.clone(), d.state.clone(), d.is_simple_consumer_group), (GroupType::Classic, GroupState::Stable, false));
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].client_id, "fk-classic-client");
    assert_eq!(d.members[0].assignment, tps(&topic, 3));
    assert!(d.members[0].host.contains("127.0.0.1"), "{:?}", d.members[0]);
    assert!(!d.partition_assignor.is_empty());
    assert!(d.coordinator.port != 0 && !d.coordinator.host.is_empty(), "{:?}", d.coordinator);
    assert!(d.authorized_operations.as_ref().is_some_and(|o| o.contains(&ferrokafka::admin::AclOperation::Describe)), "{:?}", d.authorized_operations);
    if b.is_some() {
        let k = described[1].result.as_ref().expect("KIP-848 group described");
        assert_eq!(k.group_type, GroupType::Consumer);
        assert_eq!(k.state, GroupState::Stable);
        assert_eq!(k.members.len(), 1);
        assert_eq!(k.members[0].client_id, "fk-848-client");
        assert_eq!(k.members[0].assignment, tps(&topic, 3));
        assert_eq!(k.members[0].target_assignment.as_deref(), Some(&tps(&topic, 3)[..]));
        assert!(k.group_epoch.is_some_and(|e| e > 0));
    } else {
        // No such group on 3.9 (the consumer protocol is off): it is not found.
        assert!(!matches!(&described[1].result, Ok(d) if d.state != GroupState::Dead), "{:?}", described[1].result);
    }
    match &described[2].result {
        Err(e) => assert_eq!(e.code(), Some(ErrorCode::GroupIdNotFound), "{e}"),
        Ok(d) => assert!(d.state == GroupState::Dead && d.members.is_empty(), "{d:?}"),
    }
    if let Err(e) = &described[2].result {
        assert!(e.to_string().contains(&missing), "the error names the group: {e}");
    }
    assert!(matches!(described[3].result, Err(Error::InvalidArgument(_))));

    // describe_classic_groups: the raw protocol with the decoded assignment.
    let cl = admin.describe_classic_groups([&classic], DescribeGroupsOptions::default()).await.unwrap();
    let cl = cl[0].result.as_ref().unwrap();
    assert_eq!(cl.protocol, "consumer");
    assert_eq!(cl.protocol_data, d.partition_assignor);
    assert_eq!(cl.members[0].assignment.as_deref(), Some(&tps(&topic, 3)[..]));
    assert!(!cl.members[0].metadata.is_empty());
    assert_eq!(cl.authorized_operations, None, "not asked for");

    a.close().await;
    if let Some(b) = b {
        b.close().await;
    }
}

#[tokio::test]
async fn admin_groups_offsets_altered_listed_deleted_and_groups_deleted() {
    let admin = single_admin().await;
    let topic = single_topic("admoff", 2).await;
    produce(&topic, 2, 20, 1_700_000_000_000).await;
    let g1 = unique("admoff-a");
    let g2 = unique("admoff-b");
    let missing = unique("admoff-missing");

    // alter: a simple commit; per-partition results.
    let r = admin.alter_consumer_group_offsets(&g1, offsets(&[(&topic, 0, 5), (&topic, 1, 7)]), GroupCallOptions::default()).await.unwrap();
    assert!(r.values().all(|r| r.is_ok()) && r.len() == 2, "{r:?}");
    admin.alter_consumer_group_offsets(&g2, offsets(&[(&topic, 1, 3)]), GroupCallOptions::default()).await.unwrap();
    assert!(matches!(admin.alter_consumer_group_offsets("", offsets(&[(&topic, 0, 1)]), GroupCallOptions::default()).await, Err(Error::InvalidArgument(_))));
    assert!(matches!(admin.alter_consumer_group_offsets(&g1, offsets(&[(&topic, 0, -3)]), GroupCallOptions::default()).await, Err(Error::InvalidArgument(_))));

    // list: several groups in one call, all partitions or the ones asked for.
    let listed = admin
        .list_consumer_group_offsets(
            [
                (g1.clone(), ListConsumerGroupOffsetsSpec::default()),
                (g2.clone(), ListConsumerGroupOffsetsSpec { partitions: Some(tps(&topic, 2)) }),
                (missing.clone(), ListConsumerGroupOffsetsSpec::default()),
            ],
            ListConsumerGroupOffsetsOptions { require_stable: true, timeout: None },
        )
        .await
        .unwrap();
    let o1 = listed[0].result.as_ref().unwrap();
    assert_eq!(o1.iter().map(|(tp, o)| (tp.partition, o.as_ref().map(|o| o.offset))).collect::<Vec<_>>(), [(0, Some(5)), (1, Some(7))]);
    let o2 = listed[1].result.as_ref().unwrap();
    assert_eq!(o2.iter().map(|(tp, o)| (tp.partition, o.as_ref().map(|o| o.offset))).collect::<Vec<_>>(), [(0, None), (1, Some(3))]);
    assert!(listed[2].result.as_ref().is_ok_and(|m| m.is_empty()), "{:?}", listed[2].result);

    // The altered offsets are where a new member of the group starts.
    let c = Consumer::new(consumer_config(&g1, "fk-off")).await.unwrap();
    c.subscribe([topic.clone()]).await.unwrap();
    let first = first_offsets(&c, 2).await;
    assert_eq!(first, BTreeMap::from([(0, 5), (1, 7)]));
    // While the group has a member, a simple commit is refused and so is deleting offsets
    // of a topic it subscribes to.
    let busy = admin.alter_consumer_group_offsets(&g1, offsets(&[(&topic, 0, 1)]), GroupCallOptions::default()).await;
    assert_eq!(busy.as_ref().err().and_then(|e| e.code()), Some(ErrorCode::UnknownMemberId), "{busy:?}");
    let subscribed = admin.delete_consumer_group_offsets(&g1, &tps(&topic, 1), GroupCallOptions::default()).await;
    match subscribed {
        Ok(per) => assert_eq!(per[&TopicPartition::new(&topic, 0)].as_ref().unwrap_err().code(), Some(ErrorCode::GroupSubscribedToTopic)),
        Err(e) => assert_eq!(e.code(), Some(ErrorCode::NonEmptyGroup), "{e}"),
    }
    assert_eq!(
        admin.delete_consumer_groups([&g1], GroupCallOptions::default()).await.unwrap()[0].result.as_ref().unwrap_err().code(),
        Some(ErrorCode::NonEmptyGroup)
    );
    c.close().await.unwrap();

    // delete offsets: the partition's offset is gone, the other stays.
    let del = admin.delete_consumer_group_offsets(&g2, &[TopicPartition::new(&topic, 1)], GroupCallOptions::default()).await.unwrap();
    assert!(del.values().all(|r| r.is_ok()), "{del:?}");
    let after = admin
        .list_consumer_group_offsets(
            [(g2.clone(), ListConsumerGroupOffsetsSpec { partitions: Some(tps(&topic, 2)) })],
            ListConsumerGroupOffsetsOptions::default(),
        )
        .await
        .unwrap();
    assert!(after[0].result.as_ref().unwrap().values().all(|o| o.is_none()), "{:?}", after[0].result);

    // delete groups: per group; deleted groups are gone from list_groups. (3.9 drops an
    // empty group as soon as its last offset is gone: give g2 one again.)
    admin.alter_consumer_group_offsets(&g2, offsets(&[(&topic, 0, 1)]), GroupCallOptions::default()).await.unwrap();
    let del = admin.delete_consumer_groups([&g1, &missing, &g2], GroupCallOptions::default()).await.unwrap();
    assert!(del[0].result.is_ok(), "{:?}", del[0].result);
    let e = del[1].result.as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::GroupIdNotFound), "{e}");
    assert!(e.to_string().contains(&missing), "{e}");
    assert!(del[2].result.is_ok(), "{:?}", del[2].result);
    let listed = admin.list_groups(ListGroupsOptions::default()).await.unwrap();
    assert!(!listed.groups.iter().any(|g| g.group_id == g1 || g.group_id == g2));
}

#[tokio::test]
async fn admin_groups_remove_members_by_instance_id_and_all() {
    let admin = single_admin().await;
    let topic = single_topic("admrm", 2).await;
    let group = unique("admrm");
    let cfg = |id: &str| consumer_config(&group, id).group_instance_id(id).session_timeout(Duration::from_secs(45));
    let a = Member::start(cfg("rm-a"), &topic, 2).await;
    let b = Member::start(cfg("rm-b"), &topic, 1).await;
    eventually("two members with one partition each", Duration::from_secs(30), || async {
        (a.consumer.assignment().len() == 1 && b.consumer.assignment().len() == 1).then_some(())
    })
    .await;
    // Stop polling so that nobody rejoins; static members stay until their session ends.
    a.pause().await;
    b.pause().await;
    assert!(matches!(admin.remove_members_from_consumer_group("", RemoveMembersOptions::default()).await, Err(Error::InvalidArgument(_))));

    let removed = admin
        .remove_members_from_consumer_group(
            &group,
            RemoveMembersOptions {
                members: Some(vec![MemberToRemove { group_instance_id: "rm-a".into() }, MemberToRemove { group_instance_id: "rm-nobody".into() }]),
                reason: Some("test".into()),
                timeout: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    let by_inst = |i: &str| removed.iter().find(|m| m.group_instance_id.as_deref() == Some(i)).unwrap();
    assert!(by_inst("rm-a").result.is_ok(), "{removed:?}");
    assert_eq!(by_inst("rm-nobody").result.as_ref().unwrap_err().code(), Some(ErrorCode::UnknownMemberId));
    let d = admin.describe_consumer_groups([&group], DescribeGroupsOptions::default()).await.unwrap();
    let ids: Vec<Option<String>> = d[0].result.as_ref().unwrap().members.iter().map(|m| m.group_instance_id.clone()).collect();
    assert_eq!(ids, [Some("rm-b".to_owned())], "rm-a is gone from describe");

    // No members given: every member is removed.
    let removed = admin.remove_members_from_consumer_group(&group, RemoveMembersOptions::default()).await.unwrap();
    assert_eq!(removed.len(), 1);
    assert!(removed[0].result.is_ok(), "{removed:?}");
    let d = admin.describe_consumer_groups([&group], DescribeGroupsOptions::default()).await.unwrap();
    let d = d[0].result.as_ref().unwrap();
    assert!(d.members.is_empty(), "{d:?}");
    assert_eq!(d.state, GroupState::Empty);
    a.consumer.close().await.ok();
    b.consumer.close().await.ok();
}

// ---- the Java tool -------------------------------------------------------------------------

/// Runs Kafka's own `kafka-consumer-groups.sh` (scripts/kafka-cli.sh, from the broker
/// version's kafka-tools jar) against the single node and returns its stdout.
fn java_consumer_groups(args: &[&str]) -> String {
    let script = format!("{}/scripts/kafka-cli.sh", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("consumer-groups")
        .args(["--bootstrap-server", &single_bootstrap()])
        .args(args)
        .output()
        .expect("run kafka-cli.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "kafka-consumer-groups {args:?} failed ({}):\n{}\n{stdout}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("Error:"), "kafka-consumer-groups {args:?}:\n{stdout}");
    stdout
}

/// [`java_consumer_groups`] off the runtime's thread, so that group members of the test
/// keep heartbeating while the JVM runs.
async fn java_consumer_groups_async(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || java_consumer_groups(&args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

/// The data rows of the Java tool's table output for `group`: each run of `fields` tokens
/// that starts with the group id (3.9's `--reset-offsets` prints its rows without line
/// breaks, so rows are found by token, not by line), sorted.
fn java_rows(out: &str, group: &str, fields: usize) -> Vec<Vec<String>> {
    let tokens: Vec<&str> = out.split_whitespace().collect();
    let mut rows = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == group && i + fields <= tokens.len() {
            rows.push(tokens[i..i + fields].iter().map(|t| t.to_string()).collect::<Vec<_>>());
            i += fields;
        } else {
            i += 1;
        }
    }
    rows.sort();
    rows
}

fn dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// ferrokafka's lag rows in the Java tool's columns, sorted.
fn lag_rows(lag: &ferrokafka::admin::ConsumerGroupLag) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = lag
        .partitions
        .iter()
        .map(|p| {
            vec![
                lag.group_id.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                dash(&p.current_offset),
                dash(&p.log_end_offset),
                dash(&p.lag),
                dash(&p.consumer_id),
                dash(&p.host),
                dash(&p.client_id),
            ]
        })
        .collect();
    rows.sort();
    rows
}

// ---- lag.rs --------------------------------------------------------------------------------

#[tokio::test]
async fn admin_groups_lag_rows_equal_the_java_describe_with_an_active_and_a_stopped_member() {
    use ferrokafka::admin::ConsumerGroupLagOptions;
    let admin = single_admin().await;
    /// One group of `protocol` on its own topic, compared with the Java tool twice.
    async fn round(admin: &ferrokafka::admin::AdminClient, protocol: GroupProtocol) {
        let topic = single_topic("admlag", 3).await;
        produce(&topic, 3, 10, 1_700_000_000_000).await;
        let group = &unique(if protocol == GroupProtocol::Classic { "admlag-classic" } else { "admlag-848" });
        let m = Member::start(consumer_config(group, "fk-lag-client").group_protocol(protocol), &topic, 3).await;
        // The member owns all three partitions and has committed offsets for two of them
        // (it keeps polling, without committing, so that it stays in the group).
        m.consumer.commit(Some(offsets(&[(&topic, 0, 3), (&topic, 1, 10)]))).await.unwrap();
        produce(&topic, 1, 4, 1_700_000_000_100).await; // 4 more in partition 0

        let lag = admin.consumer_group_lag(group, ConsumerGroupLagOptions::default()).await.unwrap();
        let java = java_consumer_groups_async(&["--describe", "--group", group]).await;
        let ours = lag_rows(&lag);
        assert_eq!(ours, java_rows(&java, group, 9), "{protocol:?} group with an active member; Java printed:\n{java}");
        assert_eq!(ours.len(), 3);
        assert!(lag.partitions.iter().all(|p| p.consumer_id.is_some()));
        let p0 = lag.partitions.iter().find(|p| p.partition == 0).unwrap();
        assert_eq!((p0.current_offset, p0.log_end_offset, p0.lag), (Some(3), Some(14), Some(11)));
        let p2 = lag.partitions.iter().find(|p| p.partition == 2).unwrap();
        assert_eq!((p2.current_offset, p2.lag), (None, None));
        assert_eq!(lag.total_lag, 11);
        assert_eq!(lag.topic_lag, BTreeMap::from([(topic.clone(), 11)]));

        // The member stopped (closed): rows for the committed partitions, without a consumer,
        // as the Java tool prints them for a group with no active members.
        m.close().await;
        let lag = admin.consumer_group_lag(group, ConsumerGroupLagOptions::default()).await.unwrap();
        assert_eq!(lag.state, GroupState::Empty);
        let java = java_consumer_groups_async(&["--describe", "--group", group]).await;
        let ours = lag_rows(&lag);
        assert_eq!(ours, java_rows(&java, group, 9), "{protocol:?} group without members; Java printed:\n{java}");
        assert_eq!(ours.len(), 2);
        assert!(lag.partitions.iter().all(|p| p.consumer_id.is_none()));
    }
    if broker_has_kip848() {
        tokio::join!(round(&admin, GroupProtocol::Classic), round(&admin, GroupProtocol::Consumer));
    } else {
        round(&admin, GroupProtocol::Classic).await;
    }
    let e = admin.consumer_group_lag(&unique("admlag-none"), ConsumerGroupLagOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::GroupIdNotFound), "{e}");
}

#[tokio::test]
async fn admin_groups_lag_under_read_committed_stops_at_the_last_stable_offset() {
    use ferrokafka::admin::ConsumerGroupLagOptions;
    use ferrokafka::consumer::IsolationLevel;
    let t = Duration::from_secs(30);
    let admin = single_admin().await;
    let topic = single_topic("admlagtxn", 1).await;
    let txn_producer = || async {
        let p = Producer::new(ProducerConfig::new(single_bootstrap()).transactional_id(unique("admlag-tid")).transaction_timeout(t))
            .await
            .unwrap();
        p.init_transactions(t).await.unwrap();
        p
    };
    // A committed transaction: offsets 0..5, its marker at 5. (The open one comes from
    // another producer: a producer that sends right after its commit may meet
    // CONCURRENT_TRANSACTIONS while the marker is written, which is not what this tests.)
    let p = txn_producer().await;
    p.begin_transaction().unwrap();
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(p.send(ProducerRecord::new(&topic).partition(0).value(format!("c{i}"))).await.unwrap());
    }
    p.commit_transaction(t).await.unwrap();
    p.close(t).await.unwrap();
    // An open one. (Its records may land before the first one's commit marker: with
    // transactions v2 the commit returns before the coordinator writes the marker.)
    let p = txn_producer().await;
    p.begin_transaction().unwrap();
    for i in 0..3 {
        sent.push(p.send(ProducerRecord::new(&topic).partition(0).value(format!("o{i}"))).await.unwrap());
    }
    p.flush().await.unwrap();
    let at: Vec<i64> = futures::future::join_all(sent).await.into_iter().map(|r| r.unwrap().offset).collect();
    let open_first = at[5];
    assert!(at[..5] == [0, 1, 2, 3, 4] && open_first >= 5, "{at:?}");
    let group = unique("admlagtxn");
    admin.alter_consumer_group_offsets(&group, offsets(&[(&topic, 0, 2)]), GroupCallOptions::default()).await.unwrap();

    // Once the first transaction's marker is written, the last stable offset is the open
    // transaction's first offset: read_committed lag stops there.
    let rc_opts = ConsumerGroupLagOptions { isolation_level: IsolationLevel::ReadCommitted, timeout: None };
    let rc = eventually("the LSO at the open transaction", Duration::from_secs(15), || async {
        let rc = admin.consumer_group_lag(&group, rc_opts.clone()).await.unwrap();
        (rc.partitions[0].log_end_offset == Some(open_first)).then_some(rc)
    })
    .await;
    assert_eq!(rc.partitions[0].lag, Some(open_first - 2));
    assert_eq!(rc.total_lag, open_first - 2);
    let ru = admin.consumer_group_lag(&group, ConsumerGroupLagOptions::default()).await.unwrap();
    let hw = ru.partitions[0].log_end_offset.unwrap();
    assert!(hw > at[7], "the high watermark {hw} is past the open transaction's records {at:?}");
    assert_eq!((ru.partitions[0].lag, ru.total_lag), (Some(hw - 2), hw - 2));
    p.abort_transaction(t).await.unwrap();
    p.close(t).await.unwrap();
}

// ---- reset.rs ------------------------------------------------------------------------------

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn admin_groups_reset_plans_equal_the_java_dry_run_for_every_mode() {
    use ferrokafka::admin::{parse_reset_datetime, ResetOffsetsOptions, ResetScope, ResetSpec};
    let admin = single_admin().await;
    let topic = single_topic("admrst", 2).await;
    // Per partition: offsets 0..10 in 2023 (timestamps 1_700_000_000_000 + i), 10..15 two
    // hours ago, 15..20 ten minutes ago.
    let now = now_ms();
    produce(&topic, 2, 10, 1_700_000_000_000).await;
    produce(&topic, 2, 5, now - 2 * 3_600_000).await;
    produce(&topic, 2, 5, now - 600_000).await;
    let group = unique("admrst");
    admin.alter_consumer_group_offsets(&group, offsets(&[(&topic, 0, 4), (&topic, 1, 12)]), GroupCallOptions::default()).await.unwrap();
    let file = std::env::temp_dir().join(format!("{group}.csv"));
    std::fs::write(&file, format!("{topic},0,3\n{topic},1,99\n")).unwrap();
    let file_s = file.to_string_lossy().to_string();
    let p0 = format!("{topic}:0");
    let all = ResetScope::Topics(vec![topic.clone()]);
    let tp = |p| TopicPartition::new(&topic, p);

    /// (scope, mode, the Java tool's arguments for them, the expected new offsets of p0, p1)
    type Case = (ResetScope, ResetSpec, Vec<String>, [Option<i64>; 2]);
    let cases: Vec<Case> = vec![
        (all.clone(), ResetSpec::ToEarliest, vec!["--topic".into(), topic.clone(), "--to-earliest".into()], [Some(0), Some(0)]),
        (all.clone(), ResetSpec::ToLatest, vec!["--topic".into(), topic.clone(), "--to-latest".into()], [Some(20), Some(20)]),
        (ResetScope::Partitions(vec![tp(0)]), ResetSpec::ToOffset(15), vec!["--topic".into(), p0.clone(), "--to-offset".into(), "15".into()], [Some(15), None]),
        (ResetScope::AllTopics, ResetSpec::ShiftBy(-5), vec!["--all-topics".into(), "--shift-by".into(), "-5".into()], [Some(0), Some(7)]),
        (
            all.clone(),
            ResetSpec::ToDatetime(parse_reset_datetime("2023-11-14T22:13:20.005").unwrap()),
            vec!["--topic".into(), topic.clone(), "--to-datetime".into(), "2023-11-14T22:13:20.005".into()],
            [Some(5), Some(5)],
        ),
        (
            all.clone(),
            ResetSpec::ToDatetime(parse_reset_datetime("2099-01-01T00:00:00.000+02:00").unwrap()),
            vec!["--topic".into(), topic.clone(), "--to-datetime".into(), "2099-01-01T00:00:00.000+02:00".into()],
            [Some(20), Some(20)],
        ),
        (all.clone(), ResetSpec::ByDuration(Duration::from_secs(3600)), vec!["--topic".into(), topic.clone(), "--by-duration".into(), "PT1H".into()], [Some(15), Some(15)]),
        (ResetScope::AllTopics, ResetSpec::FromPlan(vec![(tp(0), 3), (tp(1), 99)]), vec!["--from-file".into(), file_s.clone()], [Some(3), Some(20)]),
        (ResetScope::AllTopics, ResetSpec::ToCurrent, vec!["--all-topics".into(), "--to-current".into()], [Some(4), Some(12)]),
    ];
    // The Java runs go in parallel; each is a JVM start.
    let javas: Vec<_> = cases
        .iter()
        .map(|(_, _, args, _)| {
            let mut a: Vec<String> = vec!["--reset-offsets".into(), "--dry-run".into(), "--group".into(), group.clone()];
            a.extend(args.iter().cloned());
            std::thread::spawn(move || java_consumer_groups(&a.iter().map(String::as_str).collect::<Vec<_>>()))
        })
        .collect();
    for ((scope, spec, args, expected), java) in cases.into_iter().zip(javas) {
        let plan = admin.plan_offset_reset(&group, scope, spec.clone(), ResetOffsetsOptions::default()).await.unwrap();
        let want: BTreeMap<TopicPartition, i64> =
            expected.iter().enumerate().filter_map(|(p, o)| o.map(|o| (tp(p as i32), o))).collect();
        assert_eq!(plan.offsets, want, "{spec:?}");
        let java = java.join().unwrap();
        let ours: Vec<Vec<String>> =
            plan.offsets.iter().map(|(tp, o)| vec![group.clone(), tp.topic.clone(), tp.partition.to_string(), o.to_string()]).collect();
        assert_eq!(ours, java_rows(&java, &group, 4), "{spec:?} vs the Java tool {args:?}:\n{java}");
    }
    std::fs::remove_file(&file).ok();

    // Refused before anything is sent.
    assert!(matches!(
        admin.plan_offset_reset(&group, ResetScope::AllTopics, ResetSpec::ToOffset(-1), ResetOffsetsOptions::default()).await,
        Err(Error::InvalidArgument(_))
    ));
    let e = admin
        .plan_offset_reset(&group, ResetScope::Partitions(vec![tp(0), TopicPartition::new(&topic, 7)]), ResetSpec::ShiftBy(1), ResetOffsetsOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no current committed offset"), "{e}");
}

#[tokio::test]
async fn admin_groups_reset_apply_refuses_active_members_then_moves_the_group() {
    use ferrokafka::admin::{ResetOffsetsOptions, ResetScope, ResetSpec};
    let admin = single_admin().await;
    let topic = single_topic("admrsta", 2).await;
    produce(&topic, 2, 10, 1_700_000_000_000).await;
    let group = unique("admrsta");
    let m = Member::start(consumer_config(&group, "fk-reset-client"), &topic, 2).await;
    let plan = admin
        .plan_offset_reset(&group, ResetScope::Topics(vec![topic.clone()]), ResetSpec::ToOffset(6), ResetOffsetsOptions::default())
        .await
        .unwrap();
    let e = admin.apply_offset_reset(&plan, ResetOffsetsOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NonEmptyGroup), "{e}");
    let member_id = m.consumer.group_metadata().unwrap().member_id;
    assert!(e.to_string().contains(&member_id) && e.to_string().contains("fk-reset-client"), "the error names the member: {e}");
    m.close().await;

    let r = admin.apply_offset_reset(&plan, ResetOffsetsOptions::default()).await.unwrap();
    assert!(r.len() == 2 && r.values().all(|r| r.is_ok()), "{r:?}");
    // A new member of the group starts at the reset offsets.
    let c = Consumer::new(consumer_config(&group, "fk-reset-after")).await.unwrap();
    c.subscribe([topic.clone()]).await.unwrap();
    let first = first_offsets(&c, 2).await;
    assert_eq!(first, BTreeMap::from([(0, 6), (1, 6)]));
    c.close().await.unwrap();
}
