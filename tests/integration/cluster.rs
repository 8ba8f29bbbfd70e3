//! The foundation on the real 3-node cluster, with nodes killed and restarted.

use std::time::Duration;

use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};

use crate::common::*;

/// Waits until the cluster lists all three brokers again.
async fn all_three_up(admin: &AdminClient) {
    eventually("3 live brokers", Duration::from_secs(60), || async {
        (admin.describe_cluster().await.ok()?.brokers.len() == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn metadata_follows_the_leader_to_another_node_when_its_leader_is_killed() {
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let topic = unique("leader-moves");
    admin.create_topic(NewTopic::new(&topic, 1, 3)).await.unwrap();
    let before = eventually("a leader with full ISR", Duration::from_secs(30), || async {
        let p = admin.describe_topics([&topic]).await.ok()?.pop()?.partitions.pop()?;
        (p.leader.is_some() && p.isr.len() == 3).then_some(p)
    })
    .await;
    let old_leader = before.leader.unwrap();
    let old_epoch = before.leader_epoch.unwrap();

    cluster_ctl(&["kill", &old_leader.to_string()]);
    let after = eventually("a new leader", Duration::from_secs(60), || async {
        let p = admin.describe_topics([&topic]).await.ok()?.pop()?.partitions.pop()?;
        p.leader.filter(|l| *l != old_leader).map(|_| p)
    })
    .await;
    assert!(after.leader_epoch.unwrap() > old_epoch, "leader epoch must grow: {before:?} -> {after:?}");
    assert!(!after.isr.contains(&old_leader) || after.isr.len() < 3, "{after:?}");

    cluster_ctl(&["restart", &old_leader.to_string()]);
    all_three_up(&admin).await;
    // The restarted node rejoins the ISR; metadata keeps following.
    eventually("old leader back in ISR", Duration::from_secs(60), || async {
        let p = admin.describe_topics([&topic]).await.ok()?.pop()?.partitions.pop()?;
        p.isr.contains(&old_leader).then_some(())
    })
    .await;
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn a_client_whose_first_bootstrap_node_is_dead_still_connects() {
    let _faults = CLUSTER_FAULTS.lock().await;
    cluster_ctl(&["kill", "1"]);
    // Node 1 is first in the bootstrap list.
    let result = AdminClient::connect(
        AdminConfig::new(cluster_bootstrap()).default_api_timeout(Duration::from_secs(30)),
    )
    .await;
    let described = match &result {
        Ok(admin) => admin.describe_cluster().await,
        Err(e) => Err(e.clone()),
    };
    cluster_ctl(&["restart", "1"]);
    let admin = result.expect("connect with node 1 dead");
    let c = described.expect("describe with node 1 dead");
    assert!(c.brokers.iter().any(|b| b.addr() == cluster_node_addr(2)), "{c:?}");
    all_three_up(&admin).await;
}

#[tokio::test]
async fn topics_replicate_across_the_three_nodes() {
    let _faults = CLUSTER_FAULTS.lock().await;
    let admin = cluster_admin().await;
    all_three_up(&admin).await;
    let topic = unique("replicated");
    admin.create_topic(NewTopic::new(&topic, 6, 3)).await.unwrap();
    let d = eventually("6 partitions with leaders", Duration::from_secs(30), || async {
        let d = admin.describe_topics([&topic]).await.ok()?.pop()?;
        d.partitions.iter().all(|p| p.leader.is_some() && p.isr.len() == 3).then_some(d)
    })
    .await;
    let leaders: std::collections::BTreeSet<i32> = d.partitions.iter().filter_map(|p| p.leader).collect();
    assert!(leaders.len() > 1, "leadership is spread across brokers: {d:?}");
    for p in &d.partitions {
        let mut r = p.replicas.clone();
        r.sort();
        assert_eq!(r, vec![1, 2, 3], "{p:?}");
    }
    admin.delete_topic(&topic).await.unwrap();
}
