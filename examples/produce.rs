//! Produce keyed records and print where each landed.
//!
//! ```text
//! cargo run --example produce -- 127.0.0.1:9092 my-topic 10
//! ```

use std::time::Duration;

use ferrokafka::producer::{Compression, Producer, ProducerConfig, ProducerRecord};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "ferrokafka-demo".into());
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(10);

    // Idempotence and acks=all are the defaults; lz4 batches.
    let producer = Producer::new(ProducerConfig::new(&bootstrap).compression(Compression::Lz4)).await?;
    let mut deliveries = Vec::new();
    for i in 0..count {
        let record = ProducerRecord::new(&topic)
            .key(format!("user-{}", i % 4))
            .value(format!("event {i}"))
            .header("source", Some("examples/produce.rs".into()));
        // `send` returns once the record is queued; the future resolves on acknowledgement.
        deliveries.push(producer.send(record).await?);
    }
    for (i, d) in deliveries.into_iter().enumerate() {
        let m = d.await?;
        println!("record {i} (key user-{}) -> {}-{} offset {}", i % 4, m.topic, m.partition, m.offset);
    }
    producer.close(Duration::from_secs(10)).await?;
    Ok(())
}
