//! Consume what `examples/demo.rs` (or `examples/produce.rs`) wrote: every partition of the
//! topic from the beginning, printing each record, until nothing arrives for two seconds.
//!
//! ```text
//! cargo run --example consume -- 127.0.0.1:9092 ferrokafka-demo
//! ```

use std::time::Duration;

use ferrokafka::admin::{AdminClient, AdminConfig};
use ferrokafka::consumer::{Consumer, ConsumerConfig, OffsetReset, TopicPartition};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "ferrokafka-demo".into());

    // Which partitions the topic has.
    let admin = AdminClient::new(AdminConfig::new(&bootstrap)).await?;
    let described = admin.describe_topics([topic.as_str()]).await?;
    let partitions: Vec<TopicPartition> =
        described.iter().flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(&t.name, p.partition))).collect();

    let consumer = Consumer::new(ConsumerConfig::new(&bootstrap).auto_offset_reset(OffsetReset::Earliest)).await?;
    consumer.assign(partitions.clone())?;
    consumer.seek_to_beginning(&partitions)?;
    let mut total = 0usize;
    loop {
        let records = consumer.poll(Duration::from_secs(2)).await?;
        if records.is_empty() {
            break;
        }
        for r in &records {
            let text = |b: &Option<bytes::Bytes>| {
                b.as_ref().map_or("null".to_string(), |b| String::from_utf8_lossy(b).into_owned())
            };
            let headers: Vec<String> =
                r.headers.iter().map(|h| format!("{}={}", h.key, text(&h.value))).collect();
            println!(
                "{}-{} offset {}: key {} value {} headers [{}] timestamp {} ({:?})",
                r.topic, r.partition, r.offset, text(&r.key), text(&r.value), headers.join(", "), r.timestamp, r.timestamp_type
            );
        }
        total += records.len();
    }
    for tp in &partitions {
        println!("{tp}: position {}, lag {:?}", consumer.position(tp).await?, consumer.lag(tp));
    }
    println!("consumed {total} records from {topic}");
    consumer.close().await?;
    Ok(())
}
