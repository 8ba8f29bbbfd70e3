//! KIP-853 against a dynamic KRaft quorum (kraft.version 1): `scripts/kafka-local.sh start
//! quorum` runs node 1 (broker+controller, the only voter, formatted `--standalone`) and node
//! 2 (controller only, formatted `--no-initial-controllers`, an observer), and writes node 2's
//! id, directory id and controller endpoint to quorum.env, which scripts/test.sh exports.

use std::time::Duration;

use base64::Engine as _;
use ferrokafka::admin::{AdminClient, AdminConfig, QuorumInfo, RaftVoterEndpoint};

use crate::common;

/// What quorum.env says about the quorum.
struct Quorum {
    bootstrap: String,
    voter_id: i32,
    observer_id: i32,
    observer_dir_id: [u8; 16],
    observer_endpoint: RaftVoterEndpoint,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/test.sh (it starts `scripts/kafka-local.sh start quorum` and exports quorum.env)")
    })
}

/// The quorum from the environment; `None` (with a note) only against external Kafka
/// (FERROKAFKA_EXTERNAL=1) that has no dynamic quorum. Otherwise a missing variable fails.
fn quorum() -> Option<Quorum> {
    if std::env::var_os("FERROKAFKA_QUORUM_BOOTSTRAP").is_none()
        && std::env::var("FERROKAFKA_EXTERNAL").as_deref() == Ok("1")
    {
        eprintln!(
            "note: FERROKAFKA_QUORUM_BOOTSTRAP unset with FERROKAFKA_EXTERNAL=1: no dynamic quorum, KIP-853 effect test skipped"
        );
        return None;
    }
    let bootstrap = env("FERROKAFKA_QUORUM_BOOTSTRAP");
    let dir_id = env("FERROKAFKA_QUORUM_OBSERVER_DIR_ID");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&dir_id)
        .unwrap_or_else(|e| panic!("FERROKAFKA_QUORUM_OBSERVER_DIR_ID={dir_id} is not a base64url Uuid: {e}"));
    let observer_dir_id: [u8; 16] = bytes
        .try_into()
        .unwrap_or_else(|b: Vec<u8>| panic!("directory id {dir_id} has {} bytes, 16 expected", b.len()));
    let int = |name: &str| env(name).parse::<i32>().unwrap_or_else(|e| panic!("{name}: {e}"));
    Some(Quorum {
        bootstrap,
        voter_id: int("FERROKAFKA_QUORUM_VOTER_ID"),
        observer_id: int("FERROKAFKA_QUORUM_OBSERVER_ID"),
        observer_dir_id,
        observer_endpoint: RaftVoterEndpoint {
            name: env("FERROKAFKA_QUORUM_OBSERVER_LISTENER"),
            host: env("FERROKAFKA_QUORUM_OBSERVER_HOST"),
            port: int("FERROKAFKA_QUORUM_OBSERVER_PORT").try_into().expect("a port"),
        },
    })
}

fn is_voter(q: &QuorumInfo, id: i32) -> bool {
    q.voters.iter().any(|v| v.replica_id == id)
}

fn is_observer(q: &QuorumInfo, id: i32, dir: [u8; 16]) -> bool {
    q.observers.iter().any(|o| o.replica_id == id && o.replica_directory_id == dir)
}

async fn describe(admin: &AdminClient) -> QuorumInfo {
    admin.describe_metadata_quorum(Default::default()).await.unwrap()
}

#[tokio::test]
async fn raft_voter_added_then_removed_in_a_dynamic_quorum() {
    let Some(qc) = quorum() else { return };
    common::init_tracing();
    let admin = AdminClient::new(AdminConfig::new(qc.bootstrap.clone()).default_api_timeout(Duration::from_secs(30)))
        .await
        .unwrap_or_else(|e| panic!("no quorum at {} ({e}); run scripts/test.sh", qc.bootstrap));
    let (id, dir) = (qc.observer_id, qc.observer_dir_id);

    // Before: node 1 the only voter, node 2 an observer with the directory id it was
    // formatted with (DescribeQuorum v2 reports it).
    let before = common::eventually("node 2 observing the quorum", Duration::from_secs(30), || async {
        let q = describe(&admin).await;
        is_observer(&q, id, dir).then_some(q)
    })
    .await;
    assert_eq!(before.voters.iter().map(|v| v.replica_id).collect::<Vec<_>>(), vec![qc.voter_id], "{before:?}");
    assert_eq!(before.leader_id, qc.voter_id, "{before:?}");
    assert!(!before.nodes.iter().any(|n| n.node_id == id), "{before:?}");

    // A wrong directory id is refused and changes nothing.
    let e = admin.remove_raft_voter(id, [7; 16], Default::default()).await.unwrap_err();
    assert!(e.code().is_some(), "{e}");
    assert!(e.to_string().contains(&format!("voter {id}")), "{e}");

    admin.add_raft_voter(id, dir, vec![qc.observer_endpoint.clone()], Default::default()).await.unwrap();
    let added = common::eventually("node 2 a voter", Duration::from_secs(30), || async {
        let q = describe(&admin).await;
        is_voter(&q, id).then_some(q)
    })
    .await;
    let voter = added.voters.iter().find(|v| v.replica_id == id).unwrap();
    assert_eq!(voter.replica_directory_id, dir, "{added:?}");
    assert!(is_voter(&added, qc.voter_id), "{added:?}");
    assert!(!added.observers.iter().any(|o| o.replica_id == id), "{added:?}");
    // Its endpoint is now the quorum's (DescribeQuorum v2 nodes).
    let node = added.nodes.iter().find(|n| n.node_id == id).unwrap_or_else(|| panic!("{added:?}"));
    assert_eq!(node.endpoints, vec![qc.observer_endpoint.clone()], "{added:?}");

    // Adding it again: it is a voter already.
    let e = admin.add_raft_voter(id, dir, vec![qc.observer_endpoint.clone()], Default::default()).await.unwrap_err();
    assert!(e.code().is_some(), "{e}");

    admin.remove_raft_voter(id, dir, Default::default()).await.unwrap();
    let removed = common::eventually("node 2 an observer again", Duration::from_secs(30), || async {
        let q = describe(&admin).await;
        (!is_voter(&q, id) && is_observer(&q, id, dir)).then_some(q)
    })
    .await;
    // As found: node 1 the only voter and leader.
    assert_eq!(removed.voters.iter().map(|v| v.replica_id).collect::<Vec<_>>(), vec![qc.voter_id], "{removed:?}");
    assert_eq!(removed.leader_id, qc.voter_id, "{removed:?}");
    assert!(!removed.nodes.iter().any(|n| n.node_id == id), "{removed:?}");
}
