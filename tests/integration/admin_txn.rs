//! Admin client integration tests (issue 13): transactions and producers.
//!
//! A hanging transaction (a transactional producer abandoned with its transaction open) is
//! listed by list_transactions (state, producer-id, duration and, where the broker has
//! ListTransactions v2, transactional-id-pattern filters), described by
//! describe_transactions (beside an unknown id's clear error), its partition's
//! describe_producers shows the open transaction's start offset, read_committed is stuck at
//! it, and abort_transaction with those values moves the last stable offset past it so that
//! a read_committed consumer reads what followed. fence_producers fences a live
//! transactional producer: its commit and sends fail fatally, its records stay invisible.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrokafka::admin::{
    AbortTransactionSpec, AdminClient, DescribeProducersOptions, ListTransactionsOptions, ProducerState,
    TransactionListing, TransactionState,
};
use ferrokafka::consumer::{Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, OffsetReset, TopicPartition};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::{Error, ErrorCode};

use crate::common::*;

const T: Duration = Duration::from_secs(20);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn txn_producer(id: &str, timeout: Duration) -> Producer {
    let p = Producer::new(ProducerConfig::new(single_bootstrap()).transactional_id(id).transaction_timeout(timeout))
        .await
        .unwrap();
    p.init_transactions(T).await.unwrap();
    p
}

/// Sends `values` to partition 0 of `topic` and waits until each is written.
async fn send_to_p0(p: &Producer, topic: &str, values: &[String]) {
    let mut acks = Vec::new();
    for v in values {
        acks.push(p.send(ProducerRecord::new(topic).partition(0).value(v.clone())).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
}

fn consumer(isolation: IsolationLevel) -> ConsumerConfig {
    ConsumerConfig::new(single_bootstrap()).auto_offset_reset(OffsetReset::Earliest).isolation_level(isolation)
}

async fn end_offset(isolation: IsolationLevel, tp: &TopicPartition) -> i64 {
    let c = Consumer::new(consumer(isolation)).await.unwrap();
    c.end_offsets(std::slice::from_ref(tp)).await.unwrap()[tp]
}

fn values(rs: &[ConsumerRecord]) -> Vec<String> {
    rs.iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"null")).into_owned()).collect()
}

/// Whether the single node serves ListTransactions v2 (the transactional-id pattern filter,
/// Kafka 4.1+).
async fn has_list_transactions_v2(admin: &AdminClient) -> bool {
    let node = admin.describe_cluster().await.unwrap().brokers[0].id;
    let apis = admin.broker_api_versions(node).await.unwrap();
    apis.iter().find(|a| a.name == "ListTransactions").map(|a| a.broker_max >= 2).unwrap_or(false)
}

async fn listed(admin: &AdminClient, options: ListTransactionsOptions) -> Vec<TransactionListing> {
    admin.list_transactions(options).await.unwrap().all().unwrap()
}

fn ids(l: &[TransactionListing]) -> BTreeSet<&str> {
    l.iter().map(|t| t.transactional_id.as_str()).collect()
}

async fn producers_on(admin: &AdminClient, tp: &TopicPartition, options: DescribeProducersOptions) -> Vec<ProducerState> {
    let mut r = admin.describe_producers([tp.clone()], options).await.unwrap();
    r.remove(tp).unwrap().unwrap().active_producers
}

#[tokio::test]
async fn a_hanging_transaction_is_listed_described_and_aborted_then_read_committed_moves_past_it() {
    let admin = single_admin().await;
    let topic = single_topic("adm-txn-hang", 1).await;
    let tp = TopicPartition::new(&topic, 0);
    let tid = unique("adm-txn-hang");
    let started = now_ms();

    // The hanging transaction: offsets 0..3, then the producer is abandoned without commit
    // or abort (dropped, as a killed process; a long transaction timeout keeps it open).
    let hanging = txn_producer(&tid, Duration::from_secs(600)).await;
    hanging.begin_transaction().unwrap();
    let hung: Vec<String> = (0..3).map(|i| format!("hung-{i}")).collect();
    send_to_p0(&hanging, &topic, &hung).await;
    let (pid, epoch) = hanging.producer_id_and_epoch().unwrap();
    drop(hanging);

    // Records after it (offsets 3..6) that read_committed cannot see while it hangs.
    let after: Vec<String> = (0..3).map(|i| format!("after-{i}")).collect();
    let plain = Producer::new(ProducerConfig::new(single_bootstrap())).await.unwrap();
    send_to_p0(&plain, &topic, &after).await;
    plain.close(T).await.unwrap();
    assert_eq!(end_offset(IsolationLevel::ReadUncommitted, &tp).await, 6, "high watermark");
    assert_eq!(end_offset(IsolationLevel::ReadCommitted, &tp).await, 0, "the last stable offset is stuck at the open transaction");
    let rc = Consumer::new(consumer(IsolationLevel::ReadCommitted)).await.unwrap();
    rc.assign(vec![tp.clone()]).unwrap();
    let early = rc.poll(Duration::from_millis(1000)).await.unwrap();
    assert!(early.is_empty(), "read_committed read past an open transaction: {:?}", values(&early));

    // list_transactions: every filter includes it when it matches and leaves it out when not.
    let mine = TransactionListing { transactional_id: tid.clone(), producer_id: pid, state: TransactionState::Ongoing };
    assert!(listed(&admin, Default::default()).await.contains(&mine), "unfiltered listing lacks {mine:?}");
    let by_state = |states: Vec<TransactionState>| ListTransactionsOptions { states, ..Default::default() };
    assert!(listed(&admin, by_state(vec![TransactionState::Ongoing])).await.contains(&mine));
    let other_states = listed(&admin, by_state(vec![TransactionState::CompleteCommit, TransactionState::Empty])).await;
    assert!(!ids(&other_states).contains(tid.as_str()), "state filter: {other_states:?}");
    assert!(other_states.iter().all(|t| matches!(t.state, TransactionState::CompleteCommit | TransactionState::Empty)));
    let r = admin.list_transactions(by_state(vec![TransactionState::Unknown("NoSuchState".into())])).await.unwrap();
    assert_eq!(r.unknown_state_filters, BTreeSet::from(["NoSuchState".to_owned()]));
    assert!(!ids(&r.all().unwrap()).contains(tid.as_str()), "unknown state filter: {r:?}");
    let by_pid = |producer_ids: Vec<i64>| ListTransactionsOptions { producer_ids, ..Default::default() };
    assert_eq!(listed(&admin, by_pid(vec![pid])).await, vec![mine.clone()], "producer id filter");
    assert!(!ids(&listed(&admin, by_pid(vec![pid + 1_000_000])).await).contains(tid.as_str()));
    let open_for_ms = (now_ms() - started) as u64;
    assert!(open_for_ms > 500, "the transaction has been open for {open_for_ms} ms");
    let by_duration = |d: Duration| ListTransactionsOptions { duration_filter: Some(d), ..Default::default() };
    assert!(listed(&admin, by_duration(Duration::from_millis(200))).await.contains(&mine), "open longer than 200 ms");
    assert!(!ids(&listed(&admin, by_duration(Duration::from_secs(3600))).await).contains(tid.as_str()), "open longer than 1 h");
    let by_pattern = |p: String| ListTransactionsOptions { transactional_id_pattern: Some(p), ..Default::default() };
    if has_list_transactions_v2(&admin).await {
        assert_eq!(listed(&admin, by_pattern(format!("{tid}.*"))).await, vec![mine.clone()], "pattern filter");
        assert!(listed(&admin, by_pattern(format!("{tid}-nothing.*"))).await.is_empty());
    } else {
        let r = admin.list_transactions(by_pattern(format!("{tid}.*"))).await.unwrap();
        for (id, e) in &r.by_broker {
            let e = e.as_ref().expect_err("a broker without ListTransactions v2 refuses the pattern filter");
            assert!(
                matches!(e, Error::UnsupportedVersion { api, broker_range: Some((_, max)), .. } if api.contains("transactional_id_pattern") && *max < 2),
                "broker {id}: {e}"
            );
        }
        assert!(r.all().is_err());
    }

    // describe_transactions: its state beside an unknown id's error.
    let unknown = unique("adm-txn-unknown");
    let described = admin.describe_transactions([tid.as_str(), unknown.as_str()], Default::default()).await.unwrap();
    assert_eq!(described.len(), 2);
    let d = described[&tid].as_ref().unwrap();
    assert_eq!((d.state.clone(), d.producer_id, d.producer_epoch), (TransactionState::Ongoing, pid, epoch), "{d:?}");
    assert_eq!(d.transaction_timeout, Duration::from_secs(600));
    let start = d.transaction_start_time_ms.expect("an open transaction has a start time");
    assert!(start >= started - 5_000 && start <= now_ms(), "start time {start}, test started {started}");
    assert_eq!(d.topic_partitions, BTreeSet::from([tp.clone()]));
    let cluster = admin.describe_cluster().await.unwrap();
    assert!(cluster.brokers.iter().any(|b| b.id == d.coordinator_id), "coordinator {}", d.coordinator_id);
    let e = described[&unknown].as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TransactionalIdNotFound), "{e}");
    assert!(e.to_string().contains(&unknown), "the error names the id: {e}");

    // describe_producers: the open transaction's first offset, from the leader and from the
    // broker named in the options; a partition that does not exist has its own error.
    let missing = TopicPartition::new(&topic, 7);
    let r = admin.describe_producers([tp.clone(), missing.clone()], Default::default()).await.unwrap();
    let e = r[&missing].as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
    let state = r[&tp].as_ref().unwrap().active_producers.iter().find(|p| p.producer_id == pid).cloned();
    let state = state.unwrap_or_else(|| panic!("producer {pid} missing from {r:?}"));
    assert_eq!(state.current_transaction_start_offset, Some(0), "{state:?}");
    assert_eq!((state.producer_epoch, state.last_sequence), (epoch as i32, 2), "{state:?}");
    assert!(state.last_timestamp_ms >= started - 5_000, "{state:?}");
    let leader = admin.describe_topics([&topic]).await.unwrap()[0].partitions[0].leader.unwrap();
    let from_leader = producers_on(&admin, &tp, DescribeProducersOptions { broker_id: Some(leader), ..Default::default() }).await;
    assert!(from_leader.contains(&state), "{from_leader:?}");
    assert_eq!(
        producers_on(&admin, &tp, Default::default()).await.iter().filter(|p| p.current_transaction_start_offset.is_some()).count(),
        1,
        "one open transaction on the partition"
    );

    // abort_transaction with those values: the LSO moves past it (the marker is offset 6)
    // and read_committed reads what followed, never the aborted records.
    let spec = AbortTransactionSpec::from_producer_state(tp.clone(), &state).unwrap();
    admin.abort_transaction(spec, Default::default()).await.unwrap();
    assert_eq!(end_offset(IsolationLevel::ReadCommitted, &tp).await, 7, "the last stable offset after the abort");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + T;
    while got.len() < after.len() && std::time::Instant::now() < deadline {
        got.extend(rc.poll(Duration::from_millis(300)).await.unwrap());
    }
    got.extend(rc.poll(Duration::from_millis(300)).await.unwrap());
    assert_eq!(values(&got), after, "read_committed after the abort");
    let now = producers_on(&admin, &tp, Default::default()).await;
    assert!(now.iter().all(|p| p.current_transaction_start_offset.is_none()), "no open transaction left: {now:?}");

    // The coordinator still counts the transaction open (the admin abort wrote only the
    // marker); fencing the id ends it there too.
    let fenced = admin.fence_producers([&tid], Default::default()).await.unwrap();
    let f = fenced[&tid].as_ref().unwrap();
    assert!(f.producer_id == pid && f.producer_epoch > epoch, "{f:?} after {pid}/{epoch}");
    rc.close().await.unwrap();
}

#[tokio::test]
async fn fence_producers_fences_a_live_transactional_producer() {
    let admin = single_admin().await;

    // Refused before anything is sent.
    for e in [
        admin.fence_producers(["ok", ""], Default::default()).await.unwrap_err(),
        admin.describe_transactions([""], Default::default()).await.unwrap_err(),
        admin.describe_producers([TopicPartition::new("t", -1)], Default::default()).await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    let topic = single_topic("adm-txn-fence", 1).await;
    let tp = TopicPartition::new(&topic, 0);
    let tid = unique("adm-txn-fence");
    let fresh = unique("adm-txn-fresh");
    let live = txn_producer(&tid, Duration::from_secs(60)).await;
    live.begin_transaction().unwrap();
    send_to_p0(&live, &topic, &["zombie-0".into(), "zombie-1".into()]).await;
    let (pid, epoch) = live.producer_id_and_epoch().unwrap();

    let fenced = admin.fence_producers([tid.as_str(), fresh.as_str()], Default::default()).await.unwrap();
    let f = *fenced[&tid].as_ref().unwrap();
    assert!(f.producer_id == pid && f.producer_epoch > epoch, "fenced as {f:?}, was {pid}/{epoch}");
    // An id never used before is registered (as the Java client's fenceProducers does).
    let fresh_id = *fenced[&fresh].as_ref().unwrap();
    assert!(fresh_id.producer_id >= 0 && fresh_id.producer_id != pid, "{fresh_id:?}");

    // The live producer is fenced: its commit fails for good, and so does its next send.
    let e = live.commit_transaction(T).await.unwrap_err();
    assert!(e.is_fatal(), "commit after being fenced: {e}");
    let e = live.send(ProducerRecord::new(&topic).partition(0).value("late")).await.unwrap_err();
    assert!(e.is_fatal(), "send after being fenced: {e}");

    // Its transaction was aborted by the coordinator, which then registered the new epoch
    // (with the fence's transaction timeout, the client's request timeout): the LSO
    // reaches the high watermark and read_committed sees none of its records.
    let d = admin.describe_transactions([&tid], Default::default()).await.unwrap().remove(&tid).unwrap().unwrap();
    assert_eq!((d.state.clone(), d.producer_id, d.producer_epoch), (TransactionState::Empty, pid, f.producer_epoch), "{d:?}");
    // (3.9 still reports the aborted transaction's start time in Empty; 4.x none.)
    assert!(d.topic_partitions.is_empty(), "{d:?}");
    assert_eq!(d.transaction_timeout, Duration::from_secs(30), "the fence's transaction timeout");
    let hw = end_offset(IsolationLevel::ReadUncommitted, &tp).await;
    assert!(hw >= 3, "two records and an abort marker: {hw}");
    assert_eq!(end_offset(IsolationLevel::ReadCommitted, &tp).await, hw);
    let rc = Consumer::new(consumer(IsolationLevel::ReadCommitted)).await.unwrap();
    rc.assign(vec![tp.clone()]).unwrap();
    let seen = rc.poll(Duration::from_millis(1000)).await.unwrap();
    assert!(seen.is_empty(), "a fenced producer's records are visible: {:?}", values(&seen));
    rc.close().await.unwrap();
}
