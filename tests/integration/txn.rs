//! The transactional producer against a real single node: commit and abort visibility
//! under both isolation levels, zombie fencing, offsets committed in transactions,
//! interop with the Java client, and which transaction protocol (KIP-890) was used.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrokafka::consumer::{
    Consumer, ConsumerConfig, ConsumerGroupMetadata, ConsumerRecord, IsolationLevel, OffsetAndMetadata, OffsetReset,
    TopicPartition,
};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};

use crate::common::*;

const T: Duration = Duration::from_secs(20);

async fn topic(partitions: i32) -> String {
    single_topic("txn", partitions).await
}

async fn txn_producer(id: &str) -> Producer {
    let p = Producer::new(ProducerConfig::new(single_bootstrap()).transactional_id(id).transaction_timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    p.init_transactions(T).await.unwrap();
    p
}

fn consumer_config(isolation: IsolationLevel) -> ConsumerConfig {
    ConsumerConfig::new(single_bootstrap()).auto_offset_reset(OffsetReset::Earliest).isolation_level(isolation)
}


/// Polls until `n` records arrived (failing after 20 s), then 500 ms more for extras.
async fn consume_exactly(c: &Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.len() < n {
        assert!(std::time::Instant::now() < deadline, "only {} of {n} records arrived: {:?}", got.len(), values(&got));
        got.extend(c.poll(Duration::from_millis(300)).await.unwrap());
    }
    let extra = c.poll(Duration::from_millis(500)).await.unwrap();
    assert!(extra.is_empty(), "{} records more than the {n} expected: {:?}", extra.len(), values(&extra));
    got
}

fn values(rs: &[ConsumerRecord]) -> Vec<String> {
    rs.iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"null")).into_owned()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Checks the transaction protocol `p` uses: on Kafka 4.x the broker enables transaction
/// protocol v2 by default; 3.9 has only v1. Needs the unstable `test-hooks` feature
/// (scripts/test.sh builds the integration tests with it); without it, checks nothing.
#[cfg(feature = "test-hooks")]
fn assert_protocol(p: &Producer) {
    let expected = match std::env::var("KAFKA_VERSION") {
        Ok(v) if v.starts_with("3.") => 1,
        _ => 2,
    };
    assert_eq!(p.transaction_protocol_version(), Some(expected), "transaction protocol in use");
}

#[cfg(not(feature = "test-hooks"))]
fn assert_protocol(_: &Producer) {}

/// Sends `n` records `<tag>-<i>` round-robin over `parts` partitions and awaits them.
async fn send_all(p: &Producer, topic: &str, parts: i32, tag: &str, n: usize) {
    let mut fs = Vec::new();
    for i in 0..n {
        fs.push(p.send(ProducerRecord::new(topic).partition((i as i32) % parts).value(format!("{tag}-{i}"))).await.unwrap());
    }
    for f in fs {
        f.await.unwrap();
    }
}

#[tokio::test]
async fn read_committed_sees_only_committed_transactions_and_read_uncommitted_sees_both() {
    let topic = topic(3).await;
    let p = txn_producer(&unique("tid")).await;
    assert_protocol(&p);
    let mut committed = Vec::new();
    let mut all = Vec::new();
    for (step, commit) in [(0, true), (1, false), (2, true), (3, false), (4, true)] {
        p.begin_transaction().unwrap();
        let tag = format!("{}{step}", if commit { 'c' } else { 'a' });
        send_all(&p, &topic, 3, &tag, 10).await;
        let vs: Vec<String> = (0..10).map(|i| format!("{tag}-{i}")).collect();
        all.extend(vs.clone());
        if commit {
            p.commit_transaction(T).await.unwrap();
            committed.extend(vs);
        } else {
            p.abort_transaction(T).await.unwrap();
        }
        assert_protocol(&p);
    }
    // An empty transaction commits without any request.
    p.begin_transaction().unwrap();
    p.commit_transaction(T).await.unwrap();
    // Records sent but not yet sent out when abort is called fail with an abortable error.
    p.begin_transaction().unwrap();
    let f = p.send(ProducerRecord::new(&topic).partition(0).value("never")).await.unwrap();
    p.abort_transaction(T).await.unwrap();
    if let Err(e) = f.await {
        assert!(e.is_abortable(), "{e}");
    } else {
        all.push("never".into()); // it had gone out before the abort: aborted on the broker
    }
    p.close(T).await.unwrap();

    let rc = Consumer::new(consumer_config(IsolationLevel::ReadCommitted)).await.unwrap();
    rc.assign(tps(&topic, 3)).unwrap();
    let got = consume_exactly(&rc, committed.len()).await;
    assert_eq!(sorted(values(&got)), sorted(committed), "read_committed: only committed records, each once");

    let ru = Consumer::new(consumer_config(IsolationLevel::ReadUncommitted)).await.unwrap();
    ru.assign(tps(&topic, 3)).unwrap();
    let got = consume_exactly(&ru, all.len()).await;
    // Control records (commit/abort markers) take offsets but never reach the application.
    assert_eq!(sorted(values(&got)), sorted(all), "read_uncommitted: every record, no control record");
    let rc_end = rc.end_offsets(&tps(&topic, 3)).await.unwrap();
    let total_offsets: i64 = rc_end.values().sum();
    assert!(total_offsets > got.len() as i64, "markers occupy offsets ({total_offsets} offsets, {} records)", got.len());
}

#[tokio::test]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let topic = topic(2).await;
    let id = unique("zombie");
    let group = unique("zombie-group");
    let meta = ConsumerGroupMetadata { group_id: group, generation_id: -1, member_id: String::new(), group_instance_id: None };
    let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = [(TopicPartition::new(&topic, 0), OffsetAndMetadata::new(1))].into();

    // Zombie 1: fenced while its transaction is open; then send_offsets and commit fail fatally.
    let zombie = txn_producer(&id).await;
    zombie.begin_transaction().unwrap();
    send_all(&zombie, &topic, 2, "zombie", 4).await;
    let fresh = txn_producer(&id).await;
    let e = zombie.send_offsets_to_transaction(&offsets, &meta, T).await.unwrap_err();
    assert!(e.is_fatal(), "send_offsets after being fenced: {e}");
    let e = zombie.commit_transaction(T).await.unwrap_err();
    assert!(e.is_fatal(), "commit after being fenced: {e}");
    let e = zombie.send(ProducerRecord::new(&topic).partition(0).value("late")).await.unwrap_err();
    assert!(e.is_fatal(), "send after being fenced: {e}");

    // Zombie 2 (fenced by zombie 3): the partition leaders answer its next records with
    // INVALID_PRODUCER_EPOCH, abortable as in Java (KIP-588: it may also mean the
    // coordinator aborted a timed-out transaction); the abort then finds it fenced: fatal.
    let id2 = unique("zombie");
    let z2 = txn_producer(&id2).await;
    z2.begin_transaction().unwrap();
    send_all(&z2, &topic, 2, "z2", 2).await;
    let z3 = txn_producer(&id2).await;
    let e = match z2.send(ProducerRecord::new(&topic).partition(0).value("z2-late")).await {
        Err(e) => e,
        Ok(f) => f.await.unwrap_err(),
    };
    assert!(e.is_abortable() || e.is_fatal(), "zombie's record after being fenced: {e}");
    let e = z2.send(ProducerRecord::new(&topic).partition(1).value("z2-later")).await.unwrap_err();
    assert!(e.is_abortable() || e.is_fatal(), "{e}");
    let e = z2.commit_transaction(T).await.unwrap_err();
    assert!(e.is_abortable() || e.is_fatal(), "{e}");
    let e = z2.abort_transaction(T).await.unwrap_err();
    assert!(e.is_fatal() && e.code() == Some(ferrokafka::ErrorCode::ProducerFenced), "zombie's abort: {e}");
    assert!(z2.commit_transaction(T).await.unwrap_err().is_fatal());
    assert!(z2.send(ProducerRecord::new(&topic).partition(0).value("z2-x")).await.unwrap_err().is_fatal());

    // The fencing producers work, and no zombie record is ever visible to read_committed.
    for p in [&fresh, &z3] {
        p.begin_transaction().unwrap();
        send_all(p, &topic, 2, "fresh", 3).await;
        p.commit_transaction(T).await.unwrap();
    }
    let rc = Consumer::new(consumer_config(IsolationLevel::ReadCommitted)).await.unwrap();
    rc.assign(tps(&topic, 2)).unwrap();
    let got = consume_exactly(&rc, 6).await;
    assert!(values(&got).iter().all(|v| v.starts_with("fresh-")), "{:?}", values(&got));
}

#[tokio::test]
async fn offsets_sent_to_a_transaction_are_committed_only_when_it_commits() {
    let topic = topic(2).await;
    let group = unique("txn-group");
    let p = txn_producer(&unique("tid-offsets")).await;
    let consumer = Consumer::new(consumer_config(IsolationLevel::ReadCommitted).group_id(&group)).await.unwrap();
    consumer.assign(tps(&topic, 2)).unwrap();
    let meta = ConsumerGroupMetadata { group_id: group.clone(), generation_id: -1, member_id: String::new(), group_instance_id: None };
    let tps2 = tps(&topic, 2);

    // Aborted: the offsets never become the group's.
    p.begin_transaction().unwrap();
    send_all(&p, &topic, 2, "a", 2).await;
    let aborted: BTreeMap<_, _> = [(TopicPartition::new(&topic, 0), OffsetAndMetadata::new(7))].into();
    p.send_offsets_to_transaction(&aborted, &meta, T).await.unwrap();
    p.abort_transaction(T).await.unwrap();
    let c = consumer.committed(&tps2).await.unwrap();
    assert!(c.is_empty(), "aborted offsets are not committed: {c:?}");

    // Committed: visible (with metadata) once the transaction committed.
    p.begin_transaction().unwrap();
    send_all(&p, &topic, 2, "c", 2).await;
    let mut om = OffsetAndMetadata::new(5);
    om.metadata = "txn-meta".into();
    let offsets: BTreeMap<_, _> = [(TopicPartition::new(&topic, 0), om), (TopicPartition::new(&topic, 1), OffsetAndMetadata::new(3))].into();
    p.send_offsets_to_transaction(&offsets, &meta, T).await.unwrap();
    p.commit_transaction(T).await.unwrap();
    let c = consumer.committed(&tps2).await.unwrap();
    assert_eq!(c.get(&TopicPartition::new(&topic, 0)).map(|o| (o.offset, o.metadata.as_str())), Some((5, "txn-meta")));
    assert_eq!(c.get(&TopicPartition::new(&topic, 1)).map(|o| o.offset), Some(3));
    p.close(T).await.unwrap();
}

#[tokio::test]
async fn transactions_interoperate_with_the_java_client_both_ways() {
    // Ours → the Java read_committed consumer.
    let topic2 = topic(2).await;
    let topic = topic(3).await;
    let p = txn_producer(&unique("tid-java")).await;
    let mut committed = Vec::new();
    for (step, commit) in [(0, true), (1, false), (2, true)] {
        p.begin_transaction().unwrap();
        let tag = format!("{}{step}", if commit { 'c' } else { 'a' });
        send_all(&p, &topic, 3, &tag, 6).await;
        if commit {
            p.commit_transaction(T).await.unwrap();
            committed.extend((0..6).map(|i| format!("{tag}-{i}")));
        } else {
            p.abort_transaction(T).await.unwrap();
        }
    }
    p.close(T).await.unwrap();
    let bootstrap = single_bootstrap();
    let java = java_consume(&bootstrap, &topic, committed.len(), "read_committed");
    let theirs: Vec<String> = java.iter().map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap()).collect();
    assert_eq!(sorted(theirs), sorted(committed), "Java read_committed sees exactly our committed records");

    // The Java producer's transactions → our read_committed consumer.
    let topic = topic2;
    java_tool(&["txn-produce", &bootstrap, &topic, &unique("java-tid"), "c5,a3,c2"]);
    let want: Vec<String> = (0..5).map(|j| format!("c0-{j}")).chain((0..2).map(|j| format!("c2-{j}"))).collect();
    let rc = Consumer::new(consumer_config(IsolationLevel::ReadCommitted)).await.unwrap();
    rc.assign(tps(&topic, 2)).unwrap();
    let got = consume_exactly(&rc, want.len()).await;
    assert_eq!(sorted(values(&got)), sorted(want), "our read_committed sees exactly the Java producer's committed records");
}

#[tokio::test]
async fn transactional_calls_in_the_wrong_state_are_refused() {
    let topic = topic(1).await;
    let p = Producer::new(ProducerConfig::new(single_bootstrap()).transactional_id(unique("tid-state"))).await.unwrap();
    let state_err = |e: ferrokafka::Error| assert!(matches!(e, ferrokafka::Error::InvalidTransactionState(_)), "{e}");
    state_err(p.begin_transaction().unwrap_err());
    state_err(p.send(ProducerRecord::new(&topic).value("x")).await.unwrap_err());
    p.init_transactions(T).await.unwrap();
    state_err(p.send(ProducerRecord::new(&topic).value("x")).await.unwrap_err());
    state_err(p.commit_transaction(T).await.unwrap_err());
    state_err(p.abort_transaction(T).await.unwrap_err());
    p.begin_transaction().unwrap();
    state_err(p.begin_transaction().unwrap_err());
    state_err(p.init_transactions(T).await.unwrap_err());
    p.abort_transaction(T).await.unwrap();
    // Not transactional at all.
    let plain = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    state_err(plain.begin_transaction().unwrap_err());
    let e = ProducerConfig::new(single_bootstrap()).transactional_id("x").enable_idempotence(false).validate().unwrap_err();
    assert!(e.to_string().contains("requires enable_idempotence"), "{e}");
}

#[tokio::test]
async fn a_commit_that_timed_out_completes_when_called_again_and_an_abort_after_it_re_initialises() {
    let topic = topic(2).await;
    let p = txn_producer(&unique("tid-unknown")).await;
    let mut committed = Vec::new();
    let mut unknown = 0;
    // Tiny commit timeouts leave EndTxn(commit) unanswered at different moments.
    for step in 0..6u64 {
        p.begin_transaction().unwrap();
        send_all(&p, &topic, 2, &format!("u{step}"), 2).await;
        committed.extend((0..2).map(|i| format!("u{step}-{i}")));
        if let Err(e) = p.commit_transaction(Duration::from_micros(300 + step * 1500)).await {
            assert!(e.is_retriable() && !e.is_abortable() && !e.is_fatal(), "{e}");
            unknown += 1;
            p.commit_transaction(T).await.unwrap();
        }
    }
    // An abort after a commit of unknown outcome: that transaction may or may not commit,
    // but the producer goes on with a new epoch and nothing is duplicated.
    let mut maybe = Vec::new();
    for step in 0..3u64 {
        p.begin_transaction().unwrap();
        send_all(&p, &topic, 2, &format!("m{step}"), 2).await;
        match p.commit_transaction(Duration::from_micros(300 + step * 1500)).await {
            Ok(()) => committed.extend((0..2).map(|i| format!("m{step}-{i}"))),
            Err(e) => {
                assert!(e.is_retriable(), "{e}");
                p.abort_transaction(T).await.unwrap();
                maybe.extend((0..2).map(|i| format!("m{step}-{i}")));
            }
        }
    }
    p.begin_transaction().unwrap();
    send_all(&p, &topic, 2, "last", 2).await;
    p.commit_transaction(T).await.unwrap();
    committed.extend((0..2).map(|i| format!("last-{i}")));
    p.close(T).await.unwrap();
    eprintln!("commits with unknown outcome: {unknown} retried; aborted after unknown: {}", maybe.len() / 2);

    let rc = Consumer::new(consumer_config(IsolationLevel::ReadCommitted)).await.unwrap();
    rc.assign(tps(&topic, 2)).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !committed.iter().all(|v| got.contains(v)) {
        assert!(std::time::Instant::now() < deadline, "missing committed records; got {got:?}");
        got.extend(values(&rc.poll(Duration::from_millis(300)).await.unwrap()));
    }
    got.extend(values(&rc.poll(Duration::from_millis(500)).await.unwrap()));
    let mut seen = std::collections::HashSet::new();
    for v in &got {
        assert!(seen.insert(v.clone()), "{v} read twice");
        assert!(committed.contains(v) || maybe.contains(v), "{v} was never committed");
    }
}

#[tokio::test]
async fn offsets_of_a_group_member_are_checked_against_its_generation_kip_447() {
    let topic = topic(2).await;
    let group = unique("txn-member");
    let consumer = Consumer::new(consumer_config(IsolationLevel::ReadCommitted).group_id(&group)).await.unwrap();
    consumer.subscribe([topic.clone()]).await.unwrap();
    eventually("member assigned", Duration::from_secs(20), || async {
        consumer.poll(Duration::from_millis(100)).await.unwrap();
        (consumer.assignment().len() == 2).then_some(())
    })
    .await;
    let meta = consumer.group_metadata().unwrap();
    assert!(meta.generation_id >= 1 && !meta.member_id.is_empty(), "{meta:?}");
    let p = txn_producer(&unique("tid-member")).await;
    let offsets: BTreeMap<_, _> = [(TopicPartition::new(&topic, 0), OffsetAndMetadata::new(4))].into();

    // A generation that is over: the group refuses, the transaction must be aborted.
    p.begin_transaction().unwrap();
    let stale = ConsumerGroupMetadata { generation_id: meta.generation_id - 1, ..meta.clone() };
    let e = p.send_offsets_to_transaction(&offsets, &stale, T).await.unwrap_err();
    assert!(e.is_abortable(), "{e}");
    assert_eq!(e.code(), Some(ferrokafka::ErrorCode::IllegalGeneration), "{e}");
    p.abort_transaction(T).await.unwrap();

    // The member's current generation: committed with the transaction.
    p.begin_transaction().unwrap();
    send_all(&p, &topic, 2, "m", 2).await;
    p.send_offsets_to_transaction(&offsets, &meta, T).await.unwrap();
    p.commit_transaction(T).await.unwrap();
    let c = consumer.committed(&[TopicPartition::new(&topic, 0)]).await.unwrap();
    assert_eq!(c.get(&TopicPartition::new(&topic, 0)).map(|o| o.offset), Some(4));
    p.close(T).await.unwrap();
    consumer.close().await.unwrap();
}
