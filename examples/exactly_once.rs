//! An exactly-once copy pipeline: reads `ferrokafka-eos-in`, upper-cases each value, writes
//! it to `ferrokafka-eos-out` in the same partition, and commits input offsets and output
//! records in one transaction per batch (`txn::ExactlyOncePipeline`). Then a read_committed
//! consumer checks the output holds every input record exactly once.
//!
//! ```text
//! cargo run --example exactly_once -- 127.0.0.1:9092
//! ```

use std::time::Duration;

use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};
use ferrokafka::consumer::{Consumer, ConsumerConfig, IsolationLevel, OffsetReset, TopicPartition};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::txn::ExactlyOncePipeline;
use ferrokafka::ErrorCode;

const INPUT: &str = "ferrokafka-eos-in";
const OUTPUT: &str = "ferrokafka-eos-out";
const RECORDS: usize = 300;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let admin = AdminClient::new(AdminConfig::new(&bootstrap)).await?;
    for t in [INPUT, OUTPUT] {
        // Fresh topics each run, so the check below is exact.
        match admin.delete_topic(t).await {
            Ok(()) => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(e) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => {}
            Err(e) => return Err(e.into()),
        }
        admin.create_topic(NewTopic::new(t, 3, 1)).await?;
    }

    let producer = Producer::new(ProducerConfig::new(&bootstrap)).await?;
    let mut acks = Vec::new();
    for i in 0..RECORDS {
        acks.push(producer.send(ProducerRecord::new(INPUT).key(format!("k{i}")).value(format!("record {i}"))).await?);
    }
    for a in acks {
        a.await?;
    }
    producer.close(Duration::from_secs(10)).await?;
    println!("wrote {RECORDS} records to {INPUT}");

    // The pipeline: a group consumer reading committed data, a transactional producer.
    let consumer = Consumer::new(
        ConsumerConfig::new(&bootstrap)
            // A group per run: the topics are recreated, so old committed offsets would not fit.
            .group_id(format!("ferrokafka-eos-example-{}", std::process::id()))
            .isolation_level(IsolationLevel::ReadCommitted)
            .enable_auto_commit(false)
            .auto_offset_reset(OffsetReset::Earliest),
    )
    .await?;
    consumer.subscribe([INPUT]).await?;
    let producer = Producer::new(ProducerConfig::new(&bootstrap).transactional_id("ferrokafka-eos-example-1")).await?;
    let pipeline = ExactlyOncePipeline::new(consumer, producer).await?;
    let mut copied = 0;
    let mut transactions = 0;
    while copied < RECORDS {
        let outcome = pipeline
            .run_once(|r| {
                let upper = r.value.as_ref().map(|v| String::from_utf8_lossy(v).to_uppercase());
                vec![ProducerRecord {
                    topic: OUTPUT.into(),
                    partition: Some(r.partition),
                    key: r.key.clone(),
                    value: upper.map(Into::into),
                    ..Default::default()
                }]
            })
            .await?;
        if outcome.committed {
            copied += outcome.consumed;
            transactions += 1;
        }
    }
    pipeline.close().await?;
    println!("copied {copied} records in {transactions} transactions");

    let check = Consumer::new(
        ConsumerConfig::new(&bootstrap).isolation_level(IsolationLevel::ReadCommitted).auto_offset_reset(OffsetReset::Earliest),
    )
    .await?;
    check.assign((0..3).map(|p| TopicPartition::new(OUTPUT, p)).collect())?;
    let mut values = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while values.len() < RECORDS && std::time::Instant::now() < deadline {
        for r in check.poll(Duration::from_millis(500)).await? {
            values.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    values.extend(check.poll(Duration::from_secs(1)).await?.iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()));
    values.sort();
    let mut want: Vec<String> = (0..RECORDS).map(|i| format!("RECORD {i}")).collect();
    want.sort();
    if values != want {
        return Err(format!("the output holds {} records, not exactly the {RECORDS} inputs", values.len()).into());
    }
    println!("{OUTPUT} holds every input record exactly once (read_committed)");
    check.close().await?;
    Ok(())
}
