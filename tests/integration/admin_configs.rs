//! Admin client integration tests (issue 13): configs and the cluster.

use std::time::Duration;

use ferrokafka::admin::{
    AdminClient, AlterConfigOp, AlterConfigsOptions, ConfigResource, ConfigResourceType, ConfigSource, ConfigType,
    ConfigsResult, DescribeClusterOptions, DescribeConfigsOptions, EndpointType, FeatureUpdate, RaftVoterEndpoint,
    UpdateFeaturesOptions,
};
use ferrokafka::error::{Error, ErrorCode};

use crate::common;

/// The id of the single node.
async fn node_id(admin: &AdminClient) -> i32 {
    admin.describe_cluster().await.unwrap().brokers[0].id
}

/// Whether the broker is Kafka 4.0 or later (it speaks DescribeCluster v2).
async fn kafka4(admin: &AdminClient) -> bool {
    let id = node_id(admin).await;
    admin.broker_api_versions(id).await.unwrap().iter().any(|a| a.name == "DescribeCluster" && a.broker_max >= 2)
}

/// The configs of a resource that was just created: a broker learns a new topic from the
/// metadata log a moment after the controller created it.
async fn describe_new(admin: &AdminClient, r: ConfigResource) -> ConfigsResult {
    common::eventually(&format!("the configs of {r}"), Duration::from_secs(10), || async {
        let d = describe(admin, r.clone()).await;
        d.result.is_ok().then_some(d)
    })
    .await
}

/// The configs of one resource.
async fn describe(admin: &AdminClient, r: ConfigResource) -> ConfigsResult {
    let mut v = admin.describe_configs([r], DescribeConfigsOptions::default()).await.unwrap();
    assert_eq!(v.len(), 1);
    v.pop().unwrap()
}

/// Applies `ops` to `r` and fails the test unless the broker accepted them.
async fn alter(admin: &AdminClient, r: &ConfigResource, ops: Vec<AlterConfigOp>) {
    let v = admin.incremental_alter_configs([(r.clone(), ops)], AlterConfigsOptions::default()).await.unwrap();
    assert_eq!(v.len(), 1);
    v[0].result.as_ref().unwrap_or_else(|e| panic!("altering {r}: {e}"));
}

/// Waits until `name` of `r` satisfies `ok` (a broker applies config records from the
/// metadata log a moment after the controller commits them).
async fn until_config(admin: &AdminClient, r: &ConfigResource, name: &str, ok: impl Fn(Option<&str>, ConfigSource) -> bool) {
    common::eventually(&format!("{name} of {r}"), Duration::from_secs(10), || async {
        let d = describe(admin, r.clone()).await;
        let e = d.entry(name)?;
        ok(e.value.as_deref(), e.source).then_some(())
    })
    .await
}

#[tokio::test]
async fn topic_configs_set_delete_append_subtract_and_validate_only() {
    let admin = common::single_admin().await;
    let topic = common::single_topic("cfg-topic", 1).await;
    let r = ConfigResource::topic(&topic);

    let default = describe_new(&admin, r.clone()).await.entry("retention.ms").unwrap().clone();
    assert_ne!(default.source, ConfigSource::DynamicTopicConfig);

    // Set, read back.
    alter(&admin, &r, vec![AlterConfigOp::set("retention.ms", "123456789")]).await;
    until_config(&admin, &r, "retention.ms", |v, s| v == Some("123456789") && s == ConfigSource::DynamicTopicConfig).await;

    // validate_only changes nothing.
    let v = admin
        .incremental_alter_configs(
            [(r.clone(), vec![AlterConfigOp::set("retention.ms", "987654321")])],
            AlterConfigsOptions { validate_only: true, ..Default::default() },
        )
        .await
        .unwrap();
    v[0].result.as_ref().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(describe(&admin, r.clone()).await.entry("retention.ms").unwrap().value.as_deref(), Some("123456789"));

    // Delete: back at the default.
    alter(&admin, &r, vec![AlterConfigOp::delete("retention.ms")]).await;
    until_config(&admin, &r, "retention.ms", |v, s| v == default.value.as_deref() && s == default.source).await;

    // Append and subtract on a list config.
    until_config(&admin, &r, "cleanup.policy", |v, _| v == Some("delete")).await;
    alter(&admin, &r, vec![AlterConfigOp::append("cleanup.policy", "compact")]).await;
    until_config(&admin, &r, "cleanup.policy", |v, s| v == Some("delete,compact") && s == ConfigSource::DynamicTopicConfig)
        .await;
    alter(&admin, &r, vec![AlterConfigOp::subtract("cleanup.policy", "delete")]).await;
    until_config(&admin, &r, "cleanup.policy", |v, _| v == Some("compact")).await;

    // Synonyms and documentation when asked, not otherwise.
    let d = admin
        .describe_configs(
            [r.clone()],
            DescribeConfigsOptions { include_synonyms: true, include_documentation: true, ..Default::default() },
        )
        .await
        .unwrap()
        .pop()
        .unwrap();
    let e = d.entry("cleanup.policy").unwrap();
    assert_eq!(e.config_type, ConfigType::List);
    assert!(!e.read_only && !e.is_sensitive);
    assert!(e.documentation.as_deref().is_some_and(|d| !d.is_empty()), "{e:?}");
    assert_eq!(e.synonyms.first().map(|s| (s.name.as_str(), s.source)), Some(("cleanup.policy", ConfigSource::DynamicTopicConfig)));
    assert!(e.synonyms.iter().any(|s| s.name == "log.cleanup.policy"), "{:?}", e.synonyms);
    let plain = describe(&admin, r.clone()).await;
    assert!(plain.entry("cleanup.policy").unwrap().synonyms.is_empty());
    assert!(plain.entry("cleanup.policy").unwrap().documentation.is_none(), "{:?}", plain.entry("cleanup.policy"));
}

#[tokio::test]
async fn unknown_config_names_and_missing_resources_are_the_brokers_errors_per_resource() {
    let admin = common::single_admin().await;
    let topic = common::single_topic("cfg-bad", 1).await;
    describe_new(&admin, ConfigResource::topic(&topic)).await;
    let missing = common::unique("cfg-missing");
    let v = admin
        .incremental_alter_configs(
            [
                (ConfigResource::topic(&topic), vec![AlterConfigOp::set("no.such.config", "1")]),
                (ConfigResource::topic(&missing), vec![AlterConfigOp::set("retention.ms", "1000")]),
            ],
            AlterConfigsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(v.len(), 2);
    let e = v[0].result.as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidConfig), "{e}");
    assert!(e.to_string().contains(&format!("topic {topic}")) && e.to_string().contains("no.such.config"), "{e}");
    let e = v[1].result.as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
    assert!(e.to_string().contains(&missing), "{e}");

    // Describe: one good resource, one missing topic.
    let v = admin
        .describe_configs([ConfigResource::topic(&topic), ConfigResource::topic(&missing)], Default::default())
        .await
        .unwrap();
    assert!(v[0].entry("retention.ms").is_some());
    assert_eq!(v[1].result.as_ref().unwrap_err().code(), Some(ErrorCode::UnknownTopicOrPartition));

    // Refused before sending.
    for (r, ops) in [
        (ConfigResource::new(ConfigResourceType::Broker, "one"), vec![AlterConfigOp::set("x", "1")]),
        (ConfigResource::topic(&topic), vec![AlterConfigOp::set("", "1")]),
    ] {
        let e = admin.incremental_alter_configs([(r, ops)], Default::default()).await.unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    let e = admin
        .describe_configs([ConfigResource::new(ConfigResourceType::BrokerLogger, "x")], Default::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[tokio::test]
async fn broker_dynamic_config_and_broker_logger_level() {
    let admin = common::single_admin().await;
    let id = node_id(&admin).await;
    let broker = ConfigResource::broker(id);

    // A per-broker dynamic config, set then removed.
    let name = "log.cleaner.backoff.ms";
    alter(&admin, &broker, vec![AlterConfigOp::set(name, "16000")]).await;
    until_config(&admin, &broker, name, |v, s| v == Some("16000") && s == ConfigSource::DynamicBrokerConfig).await;
    alter(&admin, &broker, vec![AlterConfigOp::delete(name)]).await;
    until_config(&admin, &broker, name, |v, s| v == Some("15000") && s != ConfigSource::DynamicBrokerConfig).await;
    let d = describe(&admin, broker.clone()).await;
    assert!(d.entry("broker.id").or(d.entry("node.id")).is_some_and(|e| e.read_only));

    // A logger's level, set then restored.
    let logger = ConfigResource::broker_logger(id);
    let lname = "kafka.server.ReplicaManager";
    let before = describe(&admin, logger.clone()).await;
    let original = before.entry(lname).and_then(|e| e.value.clone()).unwrap_or_else(|| "INFO".into());
    let level = if original == "TRACE" { "DEBUG" } else { "TRACE" };
    alter(&admin, &logger, vec![AlterConfigOp::set(lname, level)]).await;
    let after = describe(&admin, logger.clone()).await;
    let e = after.entry(lname).unwrap();
    assert_eq!(e.value.as_deref(), Some(level));
    alter(&admin, &logger, vec![AlterConfigOp::set(lname, &original)]).await;
    assert_eq!(describe(&admin, logger).await.entry(lname).unwrap().value.as_deref(), Some(original.as_str()));
}


/// The finalized level of `feature` (0 when not finalized).
async fn level(admin: &AdminClient, feature: &str) -> i16 {
    let f = admin.describe_features(Default::default()).await.unwrap();
    f.finalized_features.get(feature).map(|r| r.max_version_level).unwrap_or(0)
}

#[tokio::test]
async fn describe_cluster_through_describe_cluster_api() {
    let admin = common::single_admin().await;
    let plain = admin.describe_cluster().await.unwrap();
    assert_eq!(plain.brokers.len(), 1);
    let b = &plain.brokers[0];
    assert_eq!(b.addr(), common::single_bootstrap());
    assert_eq!(plain.controller_id, Some(b.id));
    assert!(plain.cluster_id.as_deref().is_some_and(|id| id.len() == 22), "{plain:?}");
    assert_eq!(plain.authorized_operations, None);
    assert_eq!(plain.endpoint_type, Some(EndpointType::Broker));
    // The cluster id is the one the quorum's node was formatted with.
    let formatted = std::fs::read_to_string(format!(
        "{}/single/data/meta.properties",
        std::env::var("FERROKAFKA_RUN_DIR").unwrap_or_default()
    ));
    if let Ok(meta) = formatted {
        assert!(meta.contains(&format!("cluster.id={}", plain.cluster_id.as_deref().unwrap())), "{meta}");
    }

    let asked = admin
        .describe_cluster_with(DescribeClusterOptions { include_authorized_operations: true, ..Default::default() })
        .await
        .unwrap();
    let ops = asked.authorized_operations.clone().unwrap();
    for op in [ferrokafka::admin::AclOperation::Describe, ferrokafka::admin::AclOperation::Alter, ferrokafka::admin::AclOperation::ClusterAction, ferrokafka::admin::AclOperation::DescribeConfigs] {
        assert!(ops.contains(&op), "{op:?} not in {ops:?}");
    }
    assert_eq!(asked.brokers, plain.brokers);

    // Fenced brokers: Kafka 4.0+ (DescribeCluster v2).
    let v2 = admin.broker_api_versions(b.id).await.unwrap().iter().any(|a| a.name == "DescribeCluster" && a.broker_max >= 2);
    let fenced = admin
        .describe_cluster_with(DescribeClusterOptions { include_fenced_brokers: true, ..Default::default() })
        .await;
    match fenced {
        Ok(c) => {
            assert!(v2);
            assert!(c.fenced_brokers.is_empty() && c.brokers == plain.brokers, "{c:?}");
        }
        Err(e) => assert!(!v2 && matches!(e, Error::UnsupportedVersion { api: "DescribeCluster", .. }), "{e}"),
    }
}

#[tokio::test]
async fn features_described_validated_and_updated() {
    let admin = common::single_admin().await;
    let f = admin.describe_features(Default::default()).await.unwrap();
    let mv = f.finalized_features.get("metadata.version").expect("metadata.version finalized");
    let smv = f.supported_features.get("metadata.version").expect("metadata.version supported");
    assert!(smv.min_version <= mv.max_version_level && mv.max_version_level <= smv.max_version, "{f:?}");
    assert!(f.finalized_features_epoch.is_some_and(|e| e > 0), "{f:?}");

    // A feature no other test relies on, whose level can move one step and back. Kafka 3.9
    // lists none (it leaves features whose lowest level is 0 out of its ApiVersions v3
    // answer, and metadata.version cannot go back): there only validation is checked.
    let movable = ["streams.version", "share.version", "eligible.leader.replicas.version", "group.version"]
        .iter()
        .find_map(|n| f.supported_features.get(*n).filter(|r| r.max_version > r.min_version).map(|r| (*n, *r)));
    assert!(movable.is_some() || !kafka4(&admin).await, "no movable feature in {f:?}");
    let (name, range) = movable.unwrap_or(("metadata.version", *smv));
    let cur = level(&admin, name).await;
    eprintln!("feature {name} at level {cur}, supported {range:?}");

    // validate_only: a level beyond the supported range is refused, naming the feature.
    let v = admin
        .update_features(
            [(name.to_owned(), FeatureUpdate::upgrade(range.max_version + 1))],
            UpdateFeaturesOptions { validate_only: true, ..Default::default() },
        )
        .await
        .unwrap();
    let e = v[0].result.as_ref().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidUpdateVersion), "{e}");
    assert!(e.to_string().contains(name), "{e}");
    // Refused before sending.
    for bad in [vec![], vec![("".to_owned(), FeatureUpdate::upgrade(1))], vec![(name.to_owned(), FeatureUpdate::upgrade(0))]] {
        let e = admin.update_features(bad, Default::default()).await.unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    if movable.is_none() {
        return;
    }

    // validate_only: a good change is accepted and changes nothing.
    let (there, back) = if cur > range.min_version {
        (FeatureUpdate::safe_downgrade(cur - 1), FeatureUpdate::upgrade(cur))
    } else {
        (FeatureUpdate::upgrade(cur + 1), FeatureUpdate::safe_downgrade(cur))
    };
    let v = admin
        .update_features([(name.to_owned(), there)], UpdateFeaturesOptions { validate_only: true, ..Default::default() })
        .await
        .unwrap();
    v[0].result.as_ref().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(level(&admin, name).await, cur);

    // The real move and back.
    let v = admin.update_features([(name.to_owned(), there)], Default::default()).await.unwrap();
    v[0].result.as_ref().unwrap_or_else(|e| panic!("{there:?}: {e}"));
    common::eventually("the new level", Duration::from_secs(10), || async {
        (level(&admin, name).await == there.max_version_level).then_some(())
    })
    .await;
    let v = admin.update_features([(name.to_owned(), back)], Default::default()).await.unwrap();
    v[0].result.as_ref().unwrap_or_else(|e| panic!("{back:?}: {e}"));
    common::eventually("the level back", Duration::from_secs(10), || async {
        (level(&admin, name).await == cur).then_some(())
    })
    .await;
}

#[tokio::test]
async fn metadata_quorum_described() {
    let admin = common::single_admin().await;
    let id = node_id(&admin).await;
    let q = admin.describe_metadata_quorum(Default::default()).await.unwrap();
    assert_eq!(q.leader_id, id);
    assert!(q.leader_epoch >= 1 && q.high_watermark > 0, "{q:?}");
    assert_eq!(q.voters.len(), 1, "{q:?}");
    let leader = &q.voters[0];
    assert_eq!(leader.replica_id, id);
    assert!(leader.log_end_offset >= q.high_watermark, "{q:?}");
    assert!(leader.last_caught_up_timestamp.is_some() && leader.last_fetch_timestamp.is_some(), "{q:?}");
    // Written through the quorum, the high watermark moves.
    let topic = common::single_topic("cfg-quorum", 1).await;
    alter(&admin, &ConfigResource::topic(&topic), vec![AlterConfigOp::set("retention.ms", "1000000")]).await;
    let later = admin.describe_metadata_quorum(Default::default()).await.unwrap();
    assert!(later.high_watermark > q.high_watermark, "{q:?} then {later:?}");
    // DescribeQuorum v2 (Kafka 3.9+) lists the voters' endpoints.
    if !q.nodes.is_empty() {
        let n = q.nodes.iter().find(|n| n.node_id == id).unwrap();
        assert!(n.endpoints.iter().any(|e| e.name == "CONTROLLER" && e.port > 0), "{q:?}");
    }
}

#[tokio::test]
async fn unregister_broker_and_raft_voters_give_the_brokers_errors() {
    let admin = common::single_admin().await;
    let e = admin.unregister_broker(9999, Default::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BrokerIdNotRegistered), "{e}");
    assert!(e.to_string().contains("9999"), "{e}");

    // The test brokers run a static quorum (controller.quorum.voters, kraft.version 0): the
    // quorum refuses to change its voters.
    let endpoint = RaftVoterEndpoint { name: "CONTROLLER".into(), host: "127.0.0.1".into(), port: 1 };
    let e = admin.add_raft_voter(2, [3; 16], vec![endpoint], Default::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnsupportedVersion), "{e}");
    assert!(e.to_string().contains("kraft.version"), "{e}");
    let id = node_id(&admin).await;
    let e = admin.remove_raft_voter(id, [0; 16], Default::default()).await.unwrap_err();
    assert!(matches!(e.code(), Some(ErrorCode::InvalidRequest | ErrorCode::UnsupportedVersion)), "{e}");
    assert!(e.to_string().contains(&format!("voter {id}")), "{e}");
    // The quorum is unchanged.
    assert_eq!(admin.describe_metadata_quorum(Default::default()).await.unwrap().voters.len(), 1);
}

#[tokio::test]
async fn client_metrics_resources_created_listed_described_deleted() {
    let admin = common::single_admin().await;
    let name = common::unique("cfg-metrics");
    let r = ConfigResource::client_metrics(&name);
    alter(
        &admin,
        &r,
        vec![AlterConfigOp::set("metrics", "org.apache.kafka.producer."), AlterConfigOp::set("interval.ms", "60000")],
    )
    .await;
    common::eventually("the subscription listed", Duration::from_secs(10), || async {
        admin.list_client_metrics_resources(Default::default()).await.unwrap().contains(&name).then_some(())
    })
    .await;
    until_config(&admin, &r, "metrics", |v, s| {
        v == Some("org.apache.kafka.producer.") && s == ConfigSource::DynamicClientMetricsConfig
    })
    .await;
    assert_eq!(describe(&admin, r.clone()).await.entry("interval.ms").unwrap().value.as_deref(), Some("60000"));

    // Every type at once: Kafka 4.1+ (ListConfigResources v1); before, only client metrics.
    match admin.list_config_resources(&[], Default::default()).await {
        Ok(all) => {
            assert!(all.contains(&r), "{all:?}");
            let topic = common::single_topic("cfg-list", 1).await;
            alter(&admin, &ConfigResource::topic(&topic), vec![AlterConfigOp::set("retention.ms", "1000000")]).await;
            common::eventually("the topic listed", Duration::from_secs(10), || async {
                let all = admin.list_config_resources(&[ConfigResourceType::Topic], Default::default()).await.unwrap();
                assert!(all.iter().all(|c| c.resource_type == ConfigResourceType::Topic), "{all:?}");
                all.contains(&ConfigResource::topic(&topic)).then_some(())
            })
            .await;
        }
        Err(e) => assert!(matches!(e, Error::UnsupportedVersion { api: "ListConfigResources", .. }), "{e}"),
    }

    alter(&admin, &r, vec![AlterConfigOp::delete("metrics"), AlterConfigOp::delete("interval.ms")]).await;
    common::eventually("the subscription gone", Duration::from_secs(10), || async {
        (!admin.list_client_metrics_resources(Default::default()).await.unwrap().contains(&name)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn group_config_set_read_back_and_deleted() {
    let admin = common::single_admin().await;
    let r = ConfigResource::group(common::unique("cfg-group"));
    let topic = ConfigResource::topic(common::single_topic("cfg-group", 1).await);
    describe_new(&admin, topic.clone()).await;
    // Asked together with a topic: each has its own result, whatever the broker's version.
    let mut both = admin.describe_configs([r.clone(), topic], Default::default()).await.unwrap();
    assert!(both[1].entry("retention.ms").is_some(), "{both:?}");
    let before = both.remove(0);
    if !kafka4(&admin).await {
        // Kafka 3.9 has no group config resources: the broker refuses the request.
        let e = before.result.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::InvalidRequest), "{e}");
        assert!(e.to_string().contains(&r.to_string()), "{e}");
        return;
    }
    let default = before.entry("consumer.session.timeout.ms").unwrap().clone();
    assert_ne!(default.value.as_deref(), Some("12000"));
    alter(&admin, &r, vec![AlterConfigOp::set("consumer.session.timeout.ms", "12000")]).await;
    until_config(&admin, &r, "consumer.session.timeout.ms", |v, s| v == Some("12000") && s == ConfigSource::DynamicGroupConfig)
        .await;
    alter(&admin, &r, vec![AlterConfigOp::delete("consumer.session.timeout.ms")]).await;
    until_config(&admin, &r, "consumer.session.timeout.ms", |v, s| v == default.value.as_deref() && s == default.source).await;
}
