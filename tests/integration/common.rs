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

/// Logs through `tracing` to the test output when RUST_LOG is set (e.g. RUST_LOG=ferrokafka=debug).
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// A name no other test (nor an earlier run against the same cluster) uses.
pub fn unique(prefix: &str) -> String {
    init_tracing();
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An admin client on the single node, with a short per-call timeout.
pub async fn single_admin() -> AdminClient {
    AdminClient::new(AdminConfig::new(single_bootstrap()).default_api_timeout(Duration::from_secs(30)))
        .await
        .unwrap_or_else(|e| panic!("no Kafka at {} ({e}); run scripts/test.sh", single_bootstrap()))
}

/// A new topic on the single node (`prefix` + a unique suffix), replication factor 1.
pub async fn single_topic(prefix: &str, partitions: i32) -> String {
    let name = unique(prefix);
    single_admin().await.create_topic(ferrokafka::admin::NewTopic::new(&name, partitions, 1)).await.unwrap();
    name
}

/// Partitions `0..n` of `topic`.
pub fn tps(topic: &str, n: i32) -> Vec<ferrokafka::consumer::TopicPartition> {
    (0..n).map(|p| ferrokafka::consumer::TopicPartition::new(topic, p)).collect()
}

/// An admin client on the 3-node cluster.
pub async fn cluster_admin() -> AdminClient {
    AdminClient::new(AdminConfig::new(cluster_bootstrap()).default_api_timeout(Duration::from_secs(30)))
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

/// Runs the Java client helper (`scripts/java-tool.sh`, the real kafka-clients jar) and
/// returns its stdout lines; panics with its stderr when it fails.
pub fn java_tool(args: &[&str]) -> Vec<String> {
    java_tool_lines(args, &run_java_tool(args, None), "failed")
}

/// Runs `scripts/java-tool.sh` with `args` (and the client log level, when given).
fn run_java_tool(args: &[&str], log_level: Option<&str>) -> std::process::Output {
    let script = format!("{}/scripts/java-tool.sh", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script).args(args);
    if let Some(level) = log_level {
        cmd.env("JAVA_TOOL_LOG_LEVEL", level);
    }
    cmd.output().expect("run java-tool.sh")
}

/// The stdout lines of a java-tool run; panics with its stderr when it failed.
fn java_tool_lines(args: &[&str], out: &std::process::Output, what: &str) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "java-tool {args:?} {what} ({}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

/// A record as the Java consumer printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaRecord {
    pub partition: i32,
    pub offset: i64,
    pub log_append_time: bool,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Consumes exactly `count` records of `topic` with the Java consumer.
///
/// A Java consumer that received nothing at all before its timeout (exit status 2, empty
/// output; seen a few times under load, with no client warning logged) is reported on stderr
/// and replaced once by a fresh one, at INFO log level so that a second silence explains
/// itself. Whatever the second one reads is checked as before: records that are really
/// unreadable fail it too.
pub fn java_consume(bootstrap: &str, topic: &str, count: usize, isolation: &str) -> Vec<JavaRecord> {
    let count = count.to_string();
    let args = ["consume", bootstrap, topic, &count, isolation, "120"];
    let out = run_java_tool(&args, None);
    let lines = if out.status.code() == Some(2) && out.stdout.is_empty() {
        eprintln!(
            "java-tool {args:?}: the Java consumer received nothing ({}); retrying once with a fresh consumer at INFO:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        java_tool_lines(&args, &run_java_tool(&args, Some("INFO")), "failed twice")
    } else {
        java_tool_lines(&args, &out, "failed")
    };
    lines.iter().map(|l| parse_java_record(l)).collect()
}

fn b64(s: &str) -> Option<Vec<u8>> {
    if s == "null" {
        return None;
    }
    use base64_lite::decode;
    Some(decode(s))
}

fn parse_java_record(line: &str) -> JavaRecord {
    let f: Vec<&str> = line.split('\t').collect();
    assert!(f.len() >= 6, "unexpected java-tool line {line:?}");
    let headers = f
        .get(6)
        .filter(|h| !h.is_empty())
        .map(|h| {
            h.split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("name=value header");
                    (k.to_owned(), b64(v))
                })
                .collect()
        })
        .unwrap_or_default();
    JavaRecord {
        partition: f[0].parse().unwrap(),
        offset: f[1].parse().unwrap(),
        log_append_time: f[2] == "LOG_APPEND_TIME",
        timestamp: f[3].parse().unwrap(),
        key: b64(f[4]),
        value: b64(f[5]),
        headers,
    }
}

/// Standard base64 decoding for the Java tool's output (no crate needed for this).
mod base64_lite {
    pub fn decode(s: &str) -> Vec<u8> {
        let val = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => (c - b'A') as u32,
                b'a'..=b'z' => (c - b'a' + 26) as u32,
                b'0'..=b'9' => (c - b'0' + 52) as u32,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                _ => panic!("bad base64 {s:?}"),
            }
        };
        let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
        let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
        for chunk in bytes.chunks(4) {
            let mut acc = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                acc |= val(*c) << (18 - 6 * i);
            }
            let n = chunk.len();
            out.push((acc >> 16) as u8);
            if n > 2 {
                out.push((acc >> 8) as u8);
            }
            if n > 3 {
                out.push(acc as u8);
            }
        }
        out
    }
}

/// Record `i` of the codec tests: keys and null keys, null and empty values, a repeated
/// header key, a null header value, an explicit timestamp.
pub fn sample(topic: &str, i: usize) -> ferrokafka::producer::ProducerRecord {
    let mut r = ferrokafka::producer::ProducerRecord::new(topic).timestamp(1_700_000_000_000 + i as i64);
    if i % 5 != 0 {
        r = r.key(format!("key-{i}"));
    }
    r.value = match i % 7 {
        0 => None,
        1 => Some(bytes::Bytes::new()),
        _ => Some(bytes::Bytes::from(format!("value-{i}-{}", "x".repeat(i % 50)))),
    };
    r.header("h", Some(bytes::Bytes::from(format!("a{i}"))))
        .header("h", Some(bytes::Bytes::from(format!("b{i}"))))
        .header("nothing", None)
}

/// A cluster node stopped with SIGSTOP (`pause N`); dropping this resumes it, also when the
/// test fails (panics) while the node is paused.
pub struct PausedNode(Option<i32>);

impl PausedNode {
    /// Pauses cluster node `node`.
    pub fn pause(node: i32) -> PausedNode {
        cluster_ctl(&["pause", &node.to_string()]);
        PausedNode(Some(node))
    }

    /// Resumes the node now (rather than when dropped).
    pub fn resume(mut self) {
        if let Some(n) = self.0.take() {
            cluster_ctl(&["resume", &n.to_string()]);
        }
    }
}

impl Drop for PausedNode {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            eprintln!("resuming paused cluster node {n} after a failure");
            cluster_ctl(&["resume", &n.to_string()]);
        }
    }
}
