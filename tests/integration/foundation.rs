//! The foundation on a real single node: negotiation, metadata, topic admin.

use std::time::Duration;

use ferrokafka::admin::{AdminClient, AdminConfig, CreateTopicsOptions, NewTopic};
use ferrokafka::{Error, ErrorCode};

use crate::common::*;

#[tokio::test]
async fn api_versions_are_negotiated_with_the_real_broker() {
    let admin = single_admin().await;
    let cluster = admin.describe_cluster().await.unwrap();
    let id = cluster.brokers[0].id;
    let apis = admin.broker_api_versions(id).await.unwrap();
    let find = |name: &str| apis.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("{name} missing"));
    let api_versions = find("ApiVersions");
    assert!(api_versions.broker_max >= 3, "{api_versions:?}");
    // The client speaks Metadata up to v12: it must pick min(12, broker max).
    let md = find("Metadata");
    assert_eq!(md.client_version, Some(md.broker_max.min(12)), "{md:?}");
    // Every API both sides know gets a version inside the broker's range.
    for a in &apis {
        if let Some(v) = a.client_version {
            assert!(v >= a.broker_min && v <= a.broker_max, "{a:?}");
        }
    }
    assert!(find("CreateTopics").client_version.is_some());
    assert!(find("Produce").client_version.is_some());
    assert!(find("Fetch").client_version.is_some());
}

#[tokio::test]
async fn cluster_metadata_describes_the_single_node() {
    let admin = single_admin().await;
    let c = admin.describe_cluster().await.unwrap();
    assert_eq!(c.brokers.len(), 1, "{c:?}");
    assert!(c.cluster_id.as_deref().is_some_and(|id| !id.is_empty()), "{c:?}");
    assert!(c.controller_id.is_some(), "{c:?}");
    let b = &c.brokers[0];
    assert_eq!(b.addr(), single_bootstrap(), "the broker advertises the address we bootstrapped from");
}

#[tokio::test]
async fn topics_are_created_described_listed_and_deleted() {
    let admin = single_admin().await;
    let name = unique("foundation-topic");
    admin
        .create_topic(NewTopic::new(&name, 3, 1).config("retention.ms", "3600000").config("cleanup.policy", "delete"))
        .await
        .unwrap();

    let d = eventually("topic leaders", Duration::from_secs(30), || async {
        let d = admin.describe_topics([&name]).await.ok()?.pop()?;
        d.partitions.iter().all(|p| p.leader.is_some()).then_some(d)
    })
    .await;
    assert_eq!(d.name, name);
    assert!(!d.internal);
    assert!(d.topic_id.is_some());
    assert_eq!(d.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![0, 1, 2]);
    for p in &d.partitions {
        assert_eq!(p.replicas.len(), 1);
        assert_eq!(p.isr, p.replicas);
        assert!(p.leader_epoch.is_some_and(|e| e >= 0), "{p:?}");
    }
    assert!(admin.list_topics(false).await.unwrap().contains(&name));

    // Creating it again is a clear, non-retriable error naming the topic.
    let e = admin.create_topic(NewTopic::new(&name, 3, 1)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TopicAlreadyExists), "{e}");
    assert!(!e.is_retriable());
    assert!(e.to_string().contains(&name), "{e}");

    admin.delete_topic(&name).await.unwrap();
    eventually("topic gone", Duration::from_secs(30), || async {
        (!admin.list_topics(false).await.ok()?.contains(&name)).then_some(())
    })
    .await;
    let e = admin.describe_topics([&name]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    let e = admin.delete_topic(&name).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
}

#[tokio::test]
async fn bad_topic_requests_give_clear_errors() {
    let admin = single_admin().await;
    // More replicas than brokers.
    let name = unique("too-many-replicas");
    let e = admin.create_topic(NewTopic::new(&name, 1, 3)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidReplicationFactor), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    // An unknown topic config.
    let e = admin
        .create_topic(NewTopic::new(unique("bad-config"), 1, 1).config("no.such.config", "1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidConfig), "{e}");
    // Invalid names never reach the broker.
    for bad in ["", "has space", "..", &"x".repeat(250)] {
        let e = admin.create_topic(NewTopic::new(bad, 1, 1)).await.unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}: {e}");
    }
    let e = admin.create_topic(NewTopic::new(unique("zero"), 0, 1)).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[tokio::test]
async fn validate_only_creates_nothing() {
    let admin = single_admin().await;
    let name = unique("validate-only");
    let r = admin
        .create_topics([NewTopic::new(&name, 2, 1)], CreateTopicsOptions { validate_only: true, timeout: None })
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert!(r[0].result.is_ok(), "{:?}", r[0].result);
    let e = admin.describe_topics([&name]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
}

#[tokio::test]
async fn multi_topic_calls_report_each_topic() {
    let admin = single_admin().await;
    let (a, b) = (unique("multi-a"), unique("multi-b"));
    admin.create_topic(NewTopic::new(&a, 1, 1)).await.unwrap();
    let r = admin
        .create_topics([NewTopic::new(&a, 1, 1), NewTopic::new(&b, 1, 1)], CreateTopicsOptions::default())
        .await
        .unwrap();
    assert_eq!(r[0].name, a);
    assert_eq!(r[0].result.as_ref().unwrap_err().code(), Some(ErrorCode::TopicAlreadyExists));
    assert_eq!(r[1].name, b);
    assert!(r[1].result.is_ok(), "{:?}", r[1].result);
    let r = admin.delete_topics([&a, &b]).await.unwrap();
    assert!(r.iter().all(|t| t.result.is_ok()), "{r:?}");
}

#[tokio::test]
async fn a_dead_first_bootstrap_address_is_skipped() {
    // A port nobody listens on, then the real node.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let bootstrap = format!("{dead},{}", single_bootstrap());
    let admin = AdminClient::new(AdminConfig::new(bootstrap)).await.unwrap();
    assert_eq!(admin.describe_cluster().await.unwrap().brokers.len(), 1);
}

#[tokio::test]
async fn no_reachable_bootstrap_is_a_clear_retriable_error() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = AdminClient::new(AdminConfig::new(dead.to_string())).await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert!(e.to_string().contains("no broker answered a metadata request"), "{e}");
    assert!(e.to_string().contains(&dead.to_string()), "{e}");
}

#[tokio::test]
async fn invalid_config_fails_at_build() {
    let e = AdminClient::new(AdminConfig::new("")).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let e = AdminClient::new(AdminConfig::new("::1:9092")).await.unwrap_err();
    assert!(e.to_string().contains("brackets"), "{e}");
}
