//! Shared helpers: where the brokers are, unique names, cluster fault control.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ferrokafka::admin::{AdminClient, AdminConfig};

/// The single node's bootstrap address (`FERROKAFKA_BOOTSTRAP`, default 127.0.0.1:9092).
pub fn single_bootstrap() -> String {
    std::env::var("FERROKAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// The 3-node cluster's bootstrap list (`FERROKAFKA_CLUSTER_BOOTSTRAP`).
pub fn cluster_bootstrap() -> String {
    std::env::var("FERROKAFKA_CLUSTER_BOOTSTRAP")
        .unwrap_or_else(|_| "127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092".into())
}

/// The client address of cluster node `n` (1..=3) as listed in the bootstrap list.
pub fn cluster_node_addr(n: i32) -> String {
    cluster_bootstrap().split(',').nth((n - 1) as usize).expect("node in bootstrap list").trim().to_owned()
}

/// A name no other test (nor an earlier run against the same cluster) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An admin client on the single node, with a short per-call timeout.
pub async fn single_admin() -> AdminClient {
    AdminClient::connect(AdminConfig::new(single_bootstrap()).default_api_timeout(Duration::from_secs(30)))
        .await
        .unwrap_or_else(|e| panic!("no Kafka at {} ({e}); run scripts/test.sh", single_bootstrap()))
}

/// An admin client on the 3-node cluster.
pub async fn cluster_admin() -> AdminClient {
    AdminClient::connect(AdminConfig::new(cluster_bootstrap()).default_api_timeout(Duration::from_secs(30)))
        .await
        .unwrap_or_else(|e| panic!("no Kafka cluster at {} ({e}); run scripts/test.sh", cluster_bootstrap()))
}

/// Fault tests on the cluster take this lock so that one test's killed node does not
/// surprise another.
pub static CLUSTER_FAULTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the cluster control command (`kill 2`, `restart 2`, ...) and fails the test when
/// it fails.
pub fn cluster_ctl(args: &[&str]) {
    let ctl = std::env::var("FERROKAFKA_CLUSTER_CTL")
        .unwrap_or_else(|_| format!("{}/scripts/kafka-local.sh", env!("CARGO_MANIFEST_DIR")));
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{ctl} {}", args.join(" ")))
        .status()
        .expect("run cluster control command");
    assert!(status.success(), "cluster control `{ctl} {}` failed: {status}", args.join(" "));
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
