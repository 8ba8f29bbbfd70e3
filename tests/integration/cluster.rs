//! The foundation on the real 3-node cluster, with nodes killed and restarted.

use std::time::Duration;

use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};

use crate::common::*;

/// Waits until the cluster lists all three brokers again.
pub(crate) async fn all_three_up(admin: &AdminClient) {
    eventually("3 live brokers", Duration::from_secs(60), || async {
        (admin.describe_cluster().await.ok()?.brokers.len() == 3).then_some(())
    })
    .await;
}

/// Cleanup after a cluster test. Right after a node restart, a DeleteTopics attempt can
/// time out after the controller already acted; the retry then finds the topic gone
/// (UNKNOWN_TOPIC_OR_PARTITION), which for cleanup is as good as deleted.
pub(crate) async fn drop_topic(admin: &AdminClient, topic: &str) {
    match admin.delete_topic(topic).await {
        Ok(()) => {}
        Err(e) if e.code() == Some(ferrokafka::ErrorCode::UnknownTopicOrPartition) => {}
        Err(e) => panic!("deleting {topic}: {e}"),
    }
}

/// Creates `topic` with `partitions` partitions on all three nodes and waits until every
/// partition has a leader and a full ISR.
pub(crate) async fn replicated_topic(admin: &AdminClient, topic: &str, partitions: i32) {
    admin.create_topic(NewTopic::new(topic, partitions, 3)).await.unwrap();
    eventually("leaders with full ISR", Duration::from_secs(30), || async {
        let d = admin.describe_topics([topic]).await.ok()?.pop()?;
        d.partitions.iter().all(|p| p.leader.is_some() && p.isr.len() == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn metadata_follows_the_leader_to_another_node_when_its_leader_is_killed() {
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let topic = unique("leader-moves");
    admin.create_topic(NewTopic::new(&topic, 1, 3)).await.unwrap();
    let before = eventually("a leader with full ISR", Duration::from_secs(30), || async {
        let p = admin.describe_topics([&topic]).await.ok()?.pop()?.partitions.pop()?;
        (p.leader.is_some() && p.isr.len() == 3).then_some(p)
    })
    .await;
    let old_leader = before.leader.unwrap();
    let old_epoch = before.leader_epoch.unwrap();

    cluster_ctl(&["kill", &old_leader.to_string()]);
    let after = eventually("a new leader", Duration::from_secs(60), || async {
        let p = admin.describe_topics([&topic]).await.ok()?.pop()?.partitions.pop()?;
        p.leader.filter(|l| *l != old_leader).map(|_| p)
    })
    .await;
    assert!(after.leader_epoch.unwrap() > old_epoch, "leader epoch must grow: {before:?} -> {after:?}");
    assert!(!after.isr.contains(&old_leader) || after.isr.len() < 3, "{after:?}");

    cluster_ctl(&["restart", &old_leader.to_string()]);
    all_three_up(&admin).await;
    // The restarted node rejoins the ISR; metadata keeps following.
    eventually("old leader back in ISR", Duration::from_secs(60), || async {
        let p = admin.describe_topics([&topic]).await.ok()?.pop()?.partitions.pop()?;
        p.isr.contains(&old_leader).then_some(())
    })
    .await;
    drop_topic(&admin, &topic).await;
}

#[tokio::test]
async fn a_client_whose_first_bootstrap_node_is_dead_still_connects() {
    let _faults = CLUSTER_FAULTS.lock().await;
    cluster_ctl(&["kill", "1"]);
    // Node 1 is first in the bootstrap list.
    let result = AdminClient::new(
        AdminConfig::new(cluster_bootstrap()).default_api_timeout(Duration::from_secs(30)),
    )
    .await;
    let described = match &result {
        Ok(admin) => admin.describe_cluster().await,
        Err(e) => Err(e.clone()),
    };
    cluster_ctl(&["restart", "1"]);
    let admin = result.expect("connect with node 1 dead");
    let c = described.expect("describe with node 1 dead");
    assert!(c.brokers.iter().any(|b| b.addr() == cluster_node_addr(2)), "{c:?}");
    all_three_up(&admin).await;
}

#[tokio::test]
async fn topics_replicate_across_the_three_nodes() {
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let topic = unique("replicated");
    admin.create_topic(NewTopic::new(&topic, 6, 3)).await.unwrap();
    let d = eventually("6 partitions with leaders", Duration::from_secs(30), || async {
        let d = admin.describe_topics([&topic]).await.ok()?.pop()?;
        d.partitions.iter().all(|p| p.leader.is_some() && p.isr.len() == 3).then_some(d)
    })
    .await;
    let leaders: std::collections::BTreeSet<i32> = d.partitions.iter().filter_map(|p| p.leader).collect();
    assert!(leaders.len() > 1, "leadership is spread across brokers: {d:?}");
    for p in &d.partitions {
        let mut r = p.replicas.clone();
        r.sort();
        assert_eq!(r, vec![1, 2, 3], "{p:?}");
    }
    drop_topic(&admin, &topic).await;
}

/// Reliability scenario 1: idempotent produce (acks=all, RF 3, min.insync.replicas 2) while
/// the leader of the partitions is killed and restarted several times. Every record must
/// be acknowledged, and read back exactly once, in send order per partition.
#[tokio::test]
async fn idempotent_producer_loses_and_duplicates_nothing_while_leaders_are_killed() {
    idempotent_producer_survives_leader_kills(ferrokafka::producer::ProducerConfig::new(cluster_bootstrap())).await;
}

/// The same over SASL_SSL with SCRAM-SHA-512 (the cluster's security listeners): TLS and
/// SASL on every reconnect to a restarted leader.
#[tokio::test]
async fn idempotent_producer_over_sasl_ssl_with_scram_512_survives_leader_kills() {
    let client = crate::security::cluster_sasl_ssl_config();
    idempotent_producer_survives_leader_kills(ferrokafka::producer::ProducerConfig::from_client(client)).await;
}

/// Produces 30,000 records with `config` (idempotent by default) over ~25 s while the leader
/// of partition 0 is killed and restarted three times; checks every record acknowledged
/// exactly once at the offset its ack named, in send order per partition (read back with
/// the Java consumer over plaintext).
async fn idempotent_producer_survives_leader_kills(config: ferrokafka::producer::ProducerConfig) {
    use ferrokafka::producer::{Producer, ProducerRecord};
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let topic = unique("kill-leader");
    replicated_topic(&admin, &topic, 3).await;

    let producer = Producer::new(config).await.unwrap();
    const N: usize = 30_000;
    let send_task = {
        let producer = producer.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut futures = Vec::with_capacity(N);
            for i in 0..N {
                let r = ProducerRecord::new(&topic).partition((i % 3) as i32).value(format!("{i}"));
                futures.push(producer.send(r).await.expect("send accepted"));
                if i % 500 == 499 {
                    tokio::time::sleep(Duration::from_millis(400)).await; // spread over ~25 s
                }
            }
            futures::future::join_all(futures).await
        })
    };
    for _round in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let leader = admin.describe_topics([&topic]).await.unwrap().pop().unwrap().partitions[0].leader.unwrap();
        cluster_ctl(&["kill", &leader.to_string()]);
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster_ctl(&["restart", &leader.to_string()]);
    }
    let results = send_task.await.unwrap();
    let mut acked = std::collections::HashMap::new();
    let mut failed = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(m) => {
                assert!(acked.insert((m.partition, m.offset), i).is_none(), "two records acknowledged at one offset");
            }
            Err(e) => failed.push((i, e.to_string())),
        }
    }
    assert!(failed.is_empty(), "{} records failed, first: {:?}", failed.len(), failed.first());
    producer.close(Duration::from_secs(30)).await.unwrap();
    all_three_up(&admin).await;

    let got = java_consume(&cluster_bootstrap(), &topic, N, "read_uncommitted");
    let mut seen = vec![false; N];
    let mut last_per_partition = std::collections::HashMap::new();
    let mut sorted = got.clone();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for r in sorted {
        let i: usize = String::from_utf8(r.value.clone().unwrap()).unwrap().parse().unwrap();
        assert!(!seen[i], "record {i} read twice (duplicate)");
        seen[i] = true;
        assert_eq!(acked.get(&(r.partition, r.offset)), Some(&i), "record {i} is not where its ack said");
        if let Some(prev) = last_per_partition.insert(r.partition, i) {
            assert!(prev < i, "partition {} out of send order: {prev} before {i}", r.partition);
        }
    }
    assert!(seen.iter().all(|s| *s), "acknowledged records missing");
    drop_topic(&admin, &topic).await;
}

/// The consumer on the 3-node cluster: the leader of a partition is killed mid-consumption;
/// consumption resumes from the new leader with no record lost or repeated.
#[tokio::test]
async fn consumption_resumes_from_the_new_leader_without_loss_or_repeats() {
    use ferrokafka::consumer::{Consumer, ConsumerConfig, OffsetReset, TopicPartition};
    use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let topic = unique("consume-kill");
    replicated_topic(&admin, &topic, 3).await;
    const N: usize = 6000;
    let producer = Producer::new(ProducerConfig::new(cluster_bootstrap())).await.unwrap();
    let mut fs = Vec::new();
    for i in 0..N {
        let r = ProducerRecord::new(&topic).partition((i % 3) as i32).value(format!("{i}"));
        fs.push(producer.send(r).await.unwrap());
    }
    for f in fs {
        f.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();

    // Small fetches so that consumption spans many requests.
    let consumer = Consumer::new(
        ConsumerConfig::new(cluster_bootstrap())
            .auto_offset_reset(OffsetReset::Earliest)
            .max_partition_fetch_bytes(2048)
            .max_poll_records(25),
    )
    .await
    .unwrap();
    consumer.assign((0..3).map(|p| TopicPartition::new(&topic, p)).collect()).unwrap();
    let mut seen = vec![false; N];
    let mut next_offset = [0i64; 3];
    let mut got = 0;
    let mut killed = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while got < N {
        assert!(std::time::Instant::now() < deadline, "only {got} of {N} records consumed");
        if got >= N / 3 && killed.is_none() {
            let leader = admin.describe_topics([&topic]).await.unwrap().pop().unwrap().partitions[0].leader.unwrap();
            cluster_ctl(&["kill", &leader.to_string()]);
            killed = Some(leader);
        }
        for r in consumer.poll(Duration::from_millis(500)).await.unwrap() {
            let p = r.partition as usize;
            assert_eq!(r.offset, next_offset[p], "partition {p}: a gap or a repeat");
            next_offset[p] += 1;
            let i: usize = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap().parse().unwrap();
            assert!(!seen[i], "record {i} consumed twice");
            assert_eq!(i % 3, p, "record {i} in the wrong partition");
            seen[i] = true;
            got += 1;
        }
    }
    assert!(killed.is_some(), "the leader was killed mid-consumption");
    assert!(seen.iter().all(|s| *s));
    assert_eq!(next_offset, [2000, 2000, 2000]);
    consumer.close().await.unwrap();
    cluster_ctl(&["restart", &killed.unwrap().to_string()]);
    all_three_up(&admin).await;
    drop_topic(&admin, &topic).await;
}

/// Issue 12 (KIP-794): adaptive partitioning moves keyless records away from a broker that
/// stops answering. Keyless records go continuously to a 6-partition RF 3 topic while the
/// node leading some partitions is paused (SIGSTOP) for 4 s (below the brokers' 6 s
/// session timeout, so leadership stays put): the records sent during the pause must land
/// clearly less on its partitions than on the others (uniform switching would give each
/// partition the same share), and every record must be acknowledged after the resume.
///
/// acks=1 (idempotence off, which requires acks=all): with acks=all every partition's
/// request waits for its followers too, and the paused node follows all six partitions, so
/// every queue would grow alike and there would be no faster broker to prefer. With acks=1
/// only the paused node's own partitions stall, which is the situation adaptive
/// partitioning is for. Batches of 2 KiB (~18 records) make the sticky partition switch
/// about a hundred times a second, while the brokers keep up with them (smaller batches,
/// one per partition per request, left every queue backed up before the pause on this
/// machine: with all queues long, there is nothing to prefer).
#[tokio::test]
async fn adaptive_partitioning_sends_fewer_keyless_records_to_a_paused_leader() {
    let c = keyless_while_a_leader_is_paused("adaptive", |c| c).await;
    let (slow_avg, fast_avg) = c.averages(&c.during);
    assert!(
        slow_avg * 2.0 < fast_avg,
        "the paused node's partitions {:?} got {slow_avg:.0} records each, the others {fast_avg:.0}: {:?}",
        c.slow,
        c.during
    );
}

/// Issue 12: with `partitioner_availability_timeout` (500 ms) the paused leader's
/// partitions leave the keyless switches altogether once its requests went unanswered for
/// that long: of the records sent from 1.5 s into the pause on, they get at most one
/// sticky stint's worth (a stint that began just before the exclusion: 2 x batch_size, ~40
/// records), where queue weights alone still give them some.
#[tokio::test]
async fn availability_timeout_leaves_a_paused_leader_out_of_keyless_switches() {
    let c = keyless_while_a_leader_is_paused("availability", |c| c.partitioner_availability_timeout(Duration::from_millis(500))).await;
    let late_slow: usize = c.slow.iter().map(|p| c.late[*p as usize]).sum();
    assert!(c.late.iter().sum::<usize>() >= 1000, "too few records sent late in the pause: {:?}", c.late);
    assert!(late_slow <= 40, "the paused node's partitions {:?} got {late_slow} records late in the pause: {:?}", c.slow, c.late);
}

/// Records sent during a pause, by partition.
struct PauseCounts {
    /// The paused node's partitions.
    slow: Vec<i32>,
    /// Records sent while the node was paused.
    during: [usize; 6],
    /// Those sent from 1.5 s into the pause on.
    late: [usize; 6],
}

impl PauseCounts {
    /// The average count of the paused node's partitions and of the others.
    fn averages(&self, counts: &[usize; 6]) -> (f64, f64) {
        let avg = |ps: Vec<i32>| ps.iter().map(|p| counts[*p as usize]).sum::<usize>() as f64 / ps.len() as f64;
        (avg(self.slow.clone()), avg((0..6).filter(|p| !self.slow.contains(p)).collect()))
    }
}

/// Sends keyless records continuously (2 per ms) to a new 6-partition RF 3 topic with
/// acks=1, 2 KiB batches and `tweak` applied, pauses the leader of partition 0 for 4 s,
/// and after the resume checks that every record was acknowledged and is in the log.
/// Returns where the records sent during the pause went.
async fn keyless_while_a_leader_is_paused(
    name: &str,
    tweak: impl FnOnce(ferrokafka::producer::ProducerConfig) -> ferrokafka::producer::ProducerConfig,
) -> PauseCounts {
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
    use std::sync::Arc;

    use ferrokafka::producer::{Acks, Producer, ProducerRecord};
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let topic = unique(name);
    replicated_topic(&admin, &topic, 6).await;
    // Another node's metadata may not know the new topic yet: ask until one does.
    let leaders: Vec<(i32, i32)> = eventually("the leaders of the new topic", Duration::from_secs(30), || async {
        let d = admin.describe_topics([&topic]).await.ok()?.pop()?;
        d.partitions.iter().map(|p| Some((p.partition, p.leader?))).collect::<Option<Vec<_>>>().filter(|l| l.len() == 6)
    })
    .await;
    let node = leaders.iter().find(|(p, _)| *p == 0).unwrap().1;
    let slow: Vec<i32> = leaders.iter().filter(|(_, l)| *l == node).map(|(p, _)| *p).collect();
    assert!(slow.len() < 6, "node {node} leads every partition: {leaders:?}");

    let config = ferrokafka::producer::ProducerConfig::new(cluster_bootstrap())
        .acks(Acks::Leader)
        .enable_idempotence(false)
        .batch_size(2048);
    let producer = Producer::new(tweak(config)).await.unwrap();
    // 0: not paused, 1: paused, 2: paused for 1.5 s or more.
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let send_task = {
        let (producer, topic, phase, stop, sent) = (producer.clone(), topic.clone(), phase.clone(), stop.clone(), sent.clone());
        tokio::spawn(async move {
            let mut futures = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                for _ in 0..2 {
                    let at = phase.load(Ordering::Relaxed);
                    let r = ProducerRecord::new(&topic).value(vec![b'x'; 100]);
                    futures.push((at, producer.send(r).await.expect("send accepted")));
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            let mut out = Vec::with_capacity(futures.len());
            for (at, f) in futures {
                out.push((at, f.await));
            }
            out
        })
    };
    // Steady sending first, so every partition has a queue (adaptive needs all of them).
    eventually("records flowing", Duration::from_secs(30), || async { (sent.load(Ordering::Relaxed) > 2000).then_some(()) }).await;
    let pause = tokio::task::spawn_blocking(move || PausedNode::pause(node)).await.unwrap();
    phase.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    phase.store(2, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    phase.store(0, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || pause.resume()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let results = send_task.await.unwrap();

    let mut counts = PauseCounts { slow, during: [0; 6], late: [0; 6] };
    let mut acked = [0i64; 6];
    let mut failed = Vec::new();
    for (at, r) in &results {
        match r {
            Ok(m) => {
                let p = m.partition as usize;
                acked[p] += 1;
                counts.during[p] += usize::from(*at > 0);
                counts.late[p] += usize::from(*at == 2);
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    assert!(failed.is_empty(), "{} of {} records failed, first: {:?}", failed.len(), results.len(), failed.first());
    producer.close(Duration::from_secs(30)).await.unwrap();
    // Nothing lost: each partition's log holds exactly the records acknowledged there. The
    // end offset is the high watermark, which with acks=1 follows the acknowledgements
    // only once the followers (the resumed node among them) have fetched: wait for it.
    let consumer = ferrokafka::consumer::Consumer::new(ferrokafka::consumer::ConsumerConfig::new(cluster_bootstrap())).await.unwrap();
    let logged: Vec<i64> = eventually("every acknowledged record below the high watermark", Duration::from_secs(30), || async {
        let ends = consumer.end_offsets(&tps(&topic, 6)).await.ok()?;
        let logged: Vec<i64> = (0..6).map(|p| ends[&ferrokafka::consumer::TopicPartition::new(&topic, p)]).collect();
        logged.iter().zip(&acked).all(|(l, a)| l >= a).then_some(logged)
    })
    .await;
    assert_eq!(logged, acked, "end offsets vs records acknowledged, by partition");
    let (slow_avg, fast_avg) = counts.averages(&counts.during);
    eprintln!(
        "{name}: node {node} paused, leads {:?}; records sent during the pause by partition {:?} (slow avg {slow_avg:.0}, \
         fast avg {fast_avg:.0}), from 1.5 s into it {:?}; {} records in all",
        counts.slow,
        counts.during,
        counts.late,
        results.len()
    );
    assert!(counts.during.iter().sum::<usize>() >= 1000, "too few records sent during the pause: {:?}", counts.during);
    all_three_up(&admin).await;
    drop_topic(&admin, &topic).await;
    counts
}
