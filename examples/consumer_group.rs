//! A consumer group: three members in one process share a topic's partitions, commit after
//! processing, and print their rebalances. Run against a local Kafka:
//!
//! ```text
//! cargo run --example consumer_group -- 127.0.0.1:9092
//! ```
//!
//! It creates the topic `ferrokafka-group-demo` (6 partitions) if needed, writes 60 keyed
//! records, starts three members of group `ferrokafka-group-demo` (cooperative-sticky), lets
//! them drain the topic, then stops one member and shows its partitions moving to the
//! others.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};
use ferrokafka::consumer::{
    Consumer, ConsumerConfig, ConsumerRebalanceListener, CooperativeStickyAssignor, OffsetReset, TopicPartition,
};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::ErrorCode;
use futures::future::BoxFuture;
use tokio::sync::watch;

const TOPIC: &str = "ferrokafka-group-demo";

/// Prints rebalances and commits what was processed before partitions go.
struct Logger(&'static str);

impl ConsumerRebalanceListener for Logger {
    fn on_partitions_revoked<'a>(&'a self, c: &'a Consumer, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if p.is_empty() {
                return;
            }
            println!("[{}] revoked {}", self.0, names(p));
            let offsets: BTreeMap<_, _> = c.positions().into_iter().filter(|(tp, _)| p.contains(tp)).collect();
            if let Err(e) = c.commit(Some(offsets)).await {
                println!("[{}] commit on revoke failed: {e}", self.0);
            }
        })
    }
    fn on_partitions_assigned<'a>(&'a self, _c: &'a Consumer, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !p.is_empty() {
                println!("[{}] assigned {}", self.0, names(p));
            }
        })
    }
}

fn names(p: &[TopicPartition]) -> String {
    p.iter().map(|tp| tp.partition.to_string()).collect::<Vec<_>>().join(",")
}

async fn member(
    name: &'static str,
    bootstrap: String,
    processed: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> ferrokafka::Result<()> {
    let consumer = Consumer::new(
        ConsumerConfig::new(bootstrap)
            .group_id(TOPIC)
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(false)
            .partition_assignment_strategy(vec![Arc::new(CooperativeStickyAssignor)]),
    )
    .await?;
    consumer.set_rebalance_listener(Logger(name))?;
    consumer.subscribe([TOPIC]).await?;
    while !*stop.borrow() {
        tokio::select! {
            records = consumer.poll(Duration::from_millis(500)) => {
                let records = records?;
                for r in &records {
                    // "Processing": count it.
                    let _ = (r.partition, r.offset);
                    processed.fetch_add(1, Ordering::Relaxed);
                }
                if !records.is_empty() {
                    // Commit after processing: at-least-once.
                    if let Err(e) = consumer.commit(None).await {
                        println!("[{name}] commit failed (the group rebalanced; the records go to their new owner): {e}");
                    }
                }
            }
            _ = stop.changed() => {}
        }
    }
    println!("[{name}] leaving the group");
    consumer.close().await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let admin = AdminClient::new(AdminConfig::new(&bootstrap)).await?;
    match admin.create_topic(NewTopic::new(TOPIC, 6, 1)).await {
        Ok(()) => println!("created topic {TOPIC} with 6 partitions"),
        Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    let producer = Producer::new(ProducerConfig::new(&bootstrap)).await?;
    let mut acks = Vec::new();
    for i in 0..60 {
        acks.push(producer.send(ProducerRecord::new(TOPIC).key(format!("key-{i}")).value(format!("value-{i}"))).await?);
    }
    for a in acks {
        a.await?;
    }
    producer.close(Duration::from_secs(10)).await?;
    println!("wrote 60 records");

    let processed = Arc::new(AtomicUsize::new(0));
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for name in ["member-a", "member-b", "member-c"] {
        let (tx, rx) = watch::channel(false);
        stops.push(tx);
        tasks.push(tokio::spawn(member(name, bootstrap.clone(), processed.clone(), rx)));
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    println!("processed {} records so far (a re-run starts at the committed offsets)", processed.load(Ordering::Relaxed));

    // Stop one member: its partitions move to the other two.
    stops[2].send(true)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    for s in &stops[..2] {
        s.send(true)?;
    }
    for t in tasks {
        t.await??;
    }
    println!("done: {} records processed", processed.load(Ordering::Relaxed));
    Ok(())
}
