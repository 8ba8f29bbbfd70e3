//! The admin client on a running Kafka: a consumer group's lag, an offset reset planned and
//! applied, a topic config changed and read back, an ACL created and deleted, and the
//! cluster's health.
//!
//! ```text
//! cargo run --example admin -- 127.0.0.1:9092
//! ```
//!
//! It creates a topic `ferrokafka-admin-demo-<pid>` (3 partitions), writes 30 records, lets
//! group `ferrokafka-admin-demo-<pid>` consume and commit 20 of them and leave, then shows
//! what `kafka-consumer-groups.sh --describe` would, resets the group to the earliest
//! offsets, and cleans up. The ACL step needs a broker with an authorizer (the local broker
//! of `scripts/kafka-local.sh` has one); without one it is reported and skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrokafka::admin::{
    AccessControlEntry, AclBinding, AclOperation, AclPermissionType, AdminClient, AdminConfig, AlterConfigOp,
    ClusterHealthOptions, ConfigResource, ConsumerGroupLag, ConsumerGroupLagOptions, NewTopic, PatternType,
    ResetScope, ResetSpec, ResourcePattern, ResourceType,
};
use ferrokafka::consumer::{Consumer, ConsumerConfig, OffsetReset};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};

fn print_lag(lag: &ConsumerGroupLag) {
    println!("GROUP {} ({:?}, {:?})", lag.group_id, lag.group_type, lag.state);
    println!("  {:<34} {:>9} {:>14} {:>14} {:>5}  CONSUMER-ID", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG");
    let dash = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    for r in &lag.partitions {
        println!(
            "  {:<34} {:>9} {:>14} {:>14} {:>5}  {}",
            r.topic,
            r.partition,
            dash(r.current_offset),
            dash(r.log_end_offset),
            dash(r.lag),
            r.consumer_id.as_deref().unwrap_or("-")
        );
    }
    println!("  total lag {}", lag.total_lag);
}

#[tokio::main]
async fn main() -> ferrokafka::Result<()> {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let name = format!("ferrokafka-admin-demo-{}", std::process::id());
    let admin = AdminClient::new(AdminConfig::new(&bootstrap)).await?;
    admin.create_topic(NewTopic::new(&name, 3, 1)).await?;

    let producer = Producer::new(ProducerConfig::new(&bootstrap)).await?;
    let mut acks = Vec::new();
    for i in 0..30 {
        acks.push(producer.send(ProducerRecord::new(&name).key(format!("key-{i}")).value(format!("value-{i}"))).await?);
    }
    for a in acks {
        a.await?;
    }
    producer.close(Duration::from_secs(10)).await?;

    // A member reads 20 records, commits, and leaves: the group is Empty with lag 10.
    let consumer = Consumer::new(
        ConsumerConfig::new(&bootstrap).group_id(&name).auto_offset_reset(OffsetReset::Earliest).enable_auto_commit(false),
    )
    .await?;
    consumer.subscribe([name.as_str()]).await?;
    let mut seen = 0;
    let mut positions = BTreeMap::new();
    while seen < 20 {
        for r in consumer.poll(Duration::from_millis(500)).await? {
            if seen < 20 {
                seen += 1;
                positions.insert(ferrokafka::consumer::TopicPartition::new(r.topic.to_string(), r.partition), r.offset + 1);
            }
        }
    }
    let offsets = positions.into_iter().map(|(tp, o)| (tp, ferrokafka::consumer::OffsetAndMetadata::new(o))).collect();
    consumer.commit(Some(offsets)).await?;
    consumer.close().await?;

    println!("== lag after consuming 20 of 30 records");
    let lag = admin.consumer_group_lag(&name, ConsumerGroupLagOptions::default()).await?;
    print_lag(&lag);

    println!("== reset to the earliest offsets (dry run, then applied)");
    let plan = admin.plan_offset_reset(&name, ResetScope::Topics(vec![name.clone()]), ResetSpec::ToEarliest, Default::default()).await?;
    for (tp, offset) in &plan.offsets {
        println!("  {} {} -> {offset}", tp.topic, tp.partition);
    }
    for (tp, r) in admin.apply_offset_reset(&plan, Default::default()).await? {
        if let Err(e) = r {
            println!("  {} {}: {e}", tp.topic, tp.partition);
        }
    }
    print_lag(&admin.consumer_group_lag(&name, ConsumerGroupLagOptions::default()).await?);

    println!("== a topic config set and read back");
    let topic = ConfigResource::topic(&name);
    for r in admin.incremental_alter_configs([(topic.clone(), vec![AlterConfigOp::set("retention.ms", "86400000")])], Default::default()).await? {
        r.result?;
    }
    for r in admin.describe_configs([topic], Default::default()).await? {
        if let Some(e) = r.entry("retention.ms") {
            println!("  retention.ms = {} ({:?})", e.value.as_deref().unwrap_or("?"), e.source);
        }
    }

    println!("== an ACL created, described and deleted");
    let acl = AclBinding::new(
        ResourcePattern::new(ResourceType::Topic, &name, PatternType::Literal),
        AccessControlEntry::new("User:demo-reader", "*", AclOperation::Read, AclPermissionType::Allow),
    );
    match admin.create_acls([acl.clone()], Default::default()).await.and_then(|mut r| r.remove(0).result) {
        Ok(()) => {
            for b in admin.describe_acls(&acl.to_filter(), Default::default()).await? {
                println!("  {:?} {} on {:?} {}", b.entry.permission_type, b.entry.principal, b.pattern.resource_type, b.pattern.name);
            }
            for r in admin.delete_acls([acl.to_filter()], Default::default()).await? {
                println!("  deleted {} binding(s)", r.result?.len());
            }
        }
        Err(e) => println!("  skipped: {e}"),
    }

    println!("== cluster health");
    let health = admin.cluster_health(ClusterHealthOptions { topics: Some(vec![name.clone()]), ..Default::default() }).await?;
    println!("  live brokers {:?}; unhealthy topics {:?}", health.live_brokers, health.unhealthy_topics());

    for r in admin.delete_consumer_groups([name.as_str()], Default::default()).await? {
        r.result?;
    }
    admin.delete_topic(&name).await?;
    println!("== cleaned up {name}");
    Ok(())
}
