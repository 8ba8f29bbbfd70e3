//! The README demo: describe the cluster, create a topic, list and describe it, then
//! produce keyed records to it (idempotent, acks=all) and print where each landed, then
//! consume exactly those records back.
//!
//! ```text
//! cargo run --example demo -- 127.0.0.1:9092
//! ```

use std::time::Duration;

use std::collections::BTreeMap;

use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};
use ferrokafka::consumer::{Consumer, ConsumerConfig, TopicPartition};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::ErrorCode;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let admin = AdminClient::new(AdminConfig::new(&bootstrap)).await?;

    let cluster = admin.describe_cluster().await?;
    println!("connected to cluster {} via {bootstrap}", cluster.cluster_id.as_deref().unwrap_or("?"));
    for b in &cluster.brokers {
        let role = if Some(b.id) == cluster.controller_id { " (controller)" } else { "" };
        println!("  broker {} at {}{role}", b.id, b.addr());
    }

    let topic = "ferrokafka-demo";
    match admin.create_topic(NewTopic::new(topic, 3, 1).config("retention.ms", "3600000")).await {
        Ok(()) => println!("created topic {topic} with 3 partitions"),
        Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => println!("topic {topic} already exists"),
        Err(e) => return Err(e.into()),
    }

    println!("topics: {:?}", admin.list_topics(false).await?);
    for t in admin.describe_topics([topic]).await? {
        for p in &t.partitions {
            println!(
                "  {}-{}: leader {:?}, leader epoch {:?}, replicas {:?}, isr {:?}",
                t.name, p.partition, p.leader, p.leader_epoch, p.replicas, p.isr
            );
        }
    }

    let producer = Producer::new(ProducerConfig::new(&bootstrap)).await?;
    let (pid, epoch) = producer.producer_id_and_epoch().unwrap_or((-1, -1));
    println!("producer id {pid}, epoch {epoch} (idempotent, acks=all)");
    let mut deliveries = Vec::new();
    for i in 0..6 {
        let key = format!("customer-{}", i % 3);
        deliveries.push((key.clone(), producer.send(ProducerRecord::new(topic).key(key).value(format!("order {i}"))).await?));
    }
    // Where our records start in each partition.
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    for (key, d) in deliveries {
        let m = d.await?;
        println!("  produced key {key} -> partition {} offset {}", m.partition, m.offset);
        first.entry(m.partition).and_modify(|o| *o = (*o).min(m.offset)).or_insert(m.offset);
    }
    producer.close(Duration::from_secs(10)).await?;

    let consumer = Consumer::new(ConsumerConfig::new(&bootstrap)).await?;
    let parts: Vec<TopicPartition> = first.keys().map(|p| TopicPartition::new(topic, *p)).collect();
    consumer.assign(parts.clone())?;
    for tp in &parts {
        consumer.seek(tp, first[&tp.partition])?;
    }
    let mut got = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got < 6 {
        if std::time::Instant::now() > deadline {
            return Err(format!("only {got} of the 6 records came back within 30 s").into());
        }
        for r in consumer.poll(Duration::from_secs(5)).await? {
            let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).to_string();
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string();
            println!("  consumed {}-{}@{}: {key} = {value}", r.topic, r.partition, r.offset);
            got += 1;
        }
    }
    consumer.close().await?;
    Ok(())
}
