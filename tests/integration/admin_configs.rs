//! Admin client integration tests (issue 13): configs and the cluster.

use std::time::Duration;

use ferrokafka::admin::{
    AdminClient, AlterConfigOp, AlterConfigsOptions, ConfigResource, ConfigResourceType, ConfigSource, ConfigType,
    ConfigsResult, DescribeConfigsOptions,
};
use ferrokafka::error::{Error, ErrorCode};

use crate::common;

/// The id of the single node.
async fn node_id(admin: &AdminClient) -> i32 {
    admin.describe_cluster().await.unwrap().brokers[0].id
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

    let default = describe(&admin, r.clone()).await.entry("retention.ms").unwrap().clone();
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
