//! The README demo: describe the cluster, create a topic, list and describe it.
//!
//! ```text
//! cargo run --example demo -- 127.0.0.1:9092
//! ```

use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};
use ferrokafka::ErrorCode;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let admin = AdminClient::connect(AdminConfig::new(&bootstrap)).await?;

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
    Ok(())
}
