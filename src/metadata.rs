//! The cluster metadata cache: brokers, topics, partitions, leaders and leader epochs.
//!
//! One [`Metadata`] per client. Readers take an immutable [`Cluster`] snapshot (an `Arc`,
//! cheap to clone). Refreshes are on demand (an unknown topic, an invalidation after
//! `NOT_LEADER_OR_FOLLOWER` or a broken connection) and periodic (`metadata_max_age`).
//! Concurrent refresh requests coalesce: a caller that arrives while a refresh runs waits
//! for it and uses its result when that refresh began after the caller's topics were
//! registered, instead of sending a request of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rand::seq::SliceRandom;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::ClientConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::network::{ConnKind, ConnectionPool};

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker's node id.
    pub id: i32,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: u16,
    /// The broker's rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, with IPv6 hosts in brackets.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A topic's 16-byte id (KIP-516). Displays as the Java client does (URL-safe base64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicId(pub [u8; 16]);

impl std::fmt::Display for TopicId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits: u32 = 0;
        let mut n = 0;
        for &b in &self.0 {
            bits = (bits << 8) | b as u32;
            n += 8;
            while n >= 6 {
                n -= 6;
                write!(f, "{}", A[((bits >> n) & 63) as usize] as char)?;
            }
        }
        if n > 0 {
            write!(f, "{}", A[((bits << (6 - n)) & 63) as usize] as char)?;
        }
        Ok(())
    }
}

/// One partition of a topic as the metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition number.
    pub partition: i32,
    /// The leader's broker id; `None` while no leader is elected.
    pub leader: Option<i32>,
    /// The leader epoch (KIP-320); `None` when the broker did not send one.
    pub leader_epoch: Option<i32>,
    /// All replicas' broker ids.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' broker ids.
    pub isr: Vec<i32>,
    /// Replicas that are offline.
    pub offline_replicas: Vec<i32>,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic name.
    pub name: String,
    /// The topic id, when the broker reports one.
    pub topic_id: Option<TopicId>,
    /// Whether the topic is internal (`__consumer_offsets`, `__transaction_state`).
    pub internal: bool,
    /// Partitions, sorted by partition number.
    pub partitions: Vec<PartitionInfo>,
}

/// An immutable picture of the cluster at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cluster {
    pub cluster_id: Option<String>,
    pub controller_id: Option<i32>,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    pub topics: HashMap<String, TopicDescription>,
    /// Topics the last refresh that asked for them answered with an error.
    pub topic_errors: HashMap<String, (ErrorCode, Option<String>)>,
    pub fetched_at: Option<Instant>,
}

impl Cluster {
    /// The address of a broker by id.
    pub(crate) fn broker_addr(&self, id: i32) -> Option<String> {
        self.brokers.get(&id).map(BrokerInfo::addr)
    }

    /// The leader of a partition with its epoch, if both topic and leader are known.
    pub(crate) fn leader_for(&self, topic: &str, partition: i32) -> Option<(i32, Option<i32>)> {
        let p = self.topics.get(topic)?.partitions.iter().find(|p| p.partition == partition)?;
        Some((p.leader?, p.leader_epoch))
    }
}

/// Which topics a refresh asks for.
enum Scope<'a> {
    /// Every topic of the cluster.
    All,
    /// The registered topics of interest plus these.
    Topics(&'a [String]),
}

/// The metadata cache of one client.
pub(crate) struct Metadata {
    bootstrap: Vec<String>,
    max_age: std::time::Duration,
    pool: Arc<ConnectionPool>,
    snapshot: RwLock<Arc<Cluster>>,
    /// Held while a refresh request is in flight.
    refresh_lock: tokio::sync::Mutex<()>,
    /// Number of refreshes begun / completed; see the module docs on coalescing.
    begun: AtomicU64,
    completed: AtomicU64,
    completed_all: AtomicU64,
    /// Set by invalidation: the next reader refreshes first.
    stale: AtomicBool,
    /// Topics any user of this client asked about; every refresh includes them.
    interest: Mutex<BTreeSet<String>>,
}

impl Metadata {
    pub(crate) fn new(config: &ClientConfig, pool: Arc<ConnectionPool>) -> Arc<Metadata> {
        let md = Arc::new(Metadata {
            bootstrap: config.bootstrap_servers.clone(),
            max_age: config.metadata_max_age,
            pool,
            snapshot: RwLock::new(Arc::new(Cluster::default())),
            refresh_lock: tokio::sync::Mutex::new(()),
            begun: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            completed_all: AtomicU64::new(0),
            stale: AtomicBool::new(true),
            interest: Mutex::new(BTreeSet::new()),
        });
        tokio::spawn(periodic_refresh(Arc::downgrade(&md)));
        md
    }

    /// The current snapshot, without refreshing.
    pub(crate) fn snapshot(&self) -> Arc<Cluster> {
        self.snapshot.read().unwrap().clone()
    }

    /// Marks the cache stale, after an error that says it is out of date.
    pub(crate) fn invalidate(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// Whether the snapshot is stale or older than `metadata_max_age` (what makes
    /// [`Metadata::fresh`] refresh first).
    pub(crate) fn needs_refresh(&self) -> bool {
        self.stale.load(Ordering::Acquire) || self.snapshot().fetched_at.is_none_or(|t| t.elapsed() >= self.max_age)
    }

    /// A snapshot that is not stale nor older than `metadata_max_age`, refreshing if needed.
    pub(crate) async fn fresh(&self) -> Result<Arc<Cluster>> {
        if self.needs_refresh() {
            return self.refresh_topics(&[]).await;
        }
        Ok(self.snapshot())
    }

    /// Refreshes the registered topics plus `topics` (which become registered).
    pub(crate) async fn refresh_topics(&self, topics: &[String]) -> Result<Arc<Cluster>> {
        self.refresh(Scope::Topics(topics)).await
    }

    /// Adds topics of interest without refreshing: the next refresh includes them.
    pub(crate) fn note_interest(&self, topics: &[String]) {
        let mut i = self.interest.lock().unwrap();
        let before = i.len();
        i.extend(topics.iter().cloned());
        if i.len() != before {
            self.invalidate();
        }
    }

    /// Refreshes with every topic of the cluster.
    pub(crate) async fn refresh_all(&self) -> Result<Arc<Cluster>> {
        self.refresh(Scope::All).await
    }

    async fn refresh(&self, scope: Scope<'_>) -> Result<Arc<Cluster>> {
        if let Scope::Topics(t) = scope {
            self.interest.lock().unwrap().extend(t.iter().cloned());
        }
        let seen = self.begun.load(Ordering::Acquire);
        let _guard = self.refresh_lock.lock().await;
        let covered = match scope {
            Scope::All => self.completed_all.load(Ordering::Acquire) > seen,
            Scope::Topics(_) => self.completed.load(Ordering::Acquire) > seen,
        };
        if covered {
            return Ok(self.snapshot());
        }
        let number = self.begun.fetch_add(1, Ordering::AcqRel) + 1;
        let wanted: Option<Vec<String>> = match scope {
            Scope::All => None,
            Scope::Topics(_) => Some(self.interest.lock().unwrap().iter().cloned().collect()),
        };
        let resp = self.request(wanted.as_deref()).await?;
        let snap = self.apply(resp, wanted.as_deref());
        self.completed.store(number, Ordering::Release);
        if wanted.is_none() {
            self.completed_all.store(number, Ordering::Release);
        }
        Ok(snap)
    }

    /// Sends one Metadata request to some reachable broker: known brokers first (those
    /// with an open connection before the others, the rest shuffled), then the bootstrap
    /// list in order. Fails only when every address failed, naming each failure.
    async fn request(&self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        let mut candidates: Vec<String> = self.snapshot().brokers.values().map(BrokerInfo::addr).collect();
        candidates.shuffle(&mut rand::rng());
        candidates.sort_by_key(|a| self.pool.existing(a, ConnKind::Default).is_none());
        for b in &self.bootstrap {
            if !candidates.contains(b) {
                candidates.push(b.clone());
            }
        }
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.clone())))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let mut failures = Vec::new();
        // A TLS failure is kept to be returned instead of a generic error when every address
        // failed: it names what the user must fix.
        let mut tls_failure = None;
        for addr in &candidates {
            let attempt = async {
                let conn = self.pool.get(addr, ConnKind::Default).await?;
                let version = conn.version_for::<MetadataRequest>()?;
                let resp = decode_metadata_response(conn.send_raw(&req, version).await?, version)
                    .map_err(|e| match e {
                        Error::Protocol { detail, .. } => Error::Protocol { broker: addr.clone(), detail },
                        other => other,
                    })?;
                Error::check_code(resp.error_code, "Metadata", None, None, None)?;
                Ok::<_, Error>(resp)
            };
            match attempt.await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    debug!(broker = %addr, error = %e, "metadata request failed");
                    if e.is_fatal()
                        || matches!(
                            e,
                            Error::UnsupportedVersion { .. } | Error::WrongProtocol { .. } | Error::Authentication { .. }
                        )
                    {
                        return Err(e);
                    }
                    failures.push(format!("{addr}: {e}"));
                    if matches!(e, Error::Tls { .. }) && tls_failure.is_none() {
                        tls_failure = Some(e);
                    }
                }
            }
        }
        if let Some(e) = tls_failure {
            return Err(e);
        }
        Err(Error::Connection {
            broker: candidates.join(","),
            cause: Arc::new(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("no broker answered a metadata request ({})", failures.join("; ")),
            )),
        })
    }

    /// Merges a response into a new snapshot and publishes it.
    fn apply(&self, resp: MetadataResponse, asked: Option<&[String]>) -> Arc<Cluster> {
        let old = self.snapshot();
        let mut next = Cluster {
            cluster_id: resp.cluster_id.map(|s| s.to_string()),
            controller_id: (resp.controller_id.0 >= 0).then_some(resp.controller_id.0),
            brokers: BTreeMap::new(),
            topics: if asked.is_some() { old.topics.clone() } else { HashMap::new() },
            topic_errors: HashMap::new(),
            fetched_at: Some(Instant::now()),
        };
        for b in resp.brokers {
            let Ok(port) = u16::try_from(b.port) else {
                warn!(broker = b.node_id.0, port = b.port, "ignoring broker with an invalid port");
                continue;
            };
            let info = BrokerInfo { id: b.node_id.0, host: b.host.to_string(), port, rack: b.rack.map(|r| r.to_string()) };
            if let Some(prev) = old.brokers.get(&info.id) {
                if prev.addr() != info.addr() {
                    info!(broker = info.id, from = %prev.addr(), to = %info.addr(), "broker moved");
                    self.pool.forget(&prev.addr());
                }
            }
            next.brokers.insert(info.id, info);
        }
        let mut stale_again = false;
        for t in resp.topics {
            let Some(name) = t.name.map(|n| n.0.to_string()) else { continue };
            match ErrorCode::from_code(t.error_code) {
                None | Some(ErrorCode::LeaderNotAvailable) => {
                    if t.error_code != 0 {
                        stale_again = true;
                    }
                    let mut partitions = partition_infos(t.partitions);
                    // KIP-320: never go back to an older leader epoch; keep what we had and ask
                    // again, the answering broker is behind.
                    if let Some(prev) = old.topics.get(&name) {
                        for p in partitions.iter_mut() {
                            if let Some(q) = prev.partitions.iter().find(|q| q.partition == p.partition) {
                                if let (Some(new), Some(had)) = (p.leader_epoch, q.leader_epoch) {
                                    if new < had {
                                        *p = q.clone();
                                        stale_again = true;
                                    }
                                }
                            }
                        }
                    }
                    if partitions.iter().any(|p| p.leader.is_none()) {
                        stale_again = true;
                    }
                    let id = (!t.topic_id.is_nil()).then(|| TopicId(*t.topic_id.as_bytes()));
                    next.topics.insert(
                        name.clone(),
                        TopicDescription { name, topic_id: id, internal: t.is_internal, partitions },
                    );
                }
                Some(code) => {
                    next.topics.remove(&name);
                    next.topic_errors.insert(name, (code, None));
                }
            }
        }
        let next = Arc::new(next);
        *self.snapshot.write().unwrap() = next.clone();
        self.stale.store(stale_again, Ordering::Release);
        next
    }
}

/// Refreshes the registered topics whenever the snapshot reaches `metadata_max_age`.
/// Ends when the client is dropped.
async fn periodic_refresh(md: Weak<Metadata>) {
    loop {
        let wait = {
            let Some(md) = md.upgrade() else { return };
            let age = md.snapshot().fetched_at.map(|t| t.elapsed()).unwrap_or(md.max_age);
            md.max_age.saturating_sub(age).max(std::time::Duration::from_millis(100))
        };
        tokio::time::sleep(wait).await;
        let Some(md) = md.upgrade() else { return };
        let due = md.snapshot().fetched_at.is_some_and(|t| t.elapsed() >= md.max_age);
        if due {
            if let Err(e) = md.refresh_topics(&[]).await {
                debug!(error = %e, "periodic metadata refresh failed");
            }
        }
    }
}

/// The partitions of a Metadata answer's topic, sorted by partition number (-1 leader and
/// epoch as `None`).
pub(crate) fn partition_infos(
    partitions: Vec<kafka_protocol::messages::metadata_response::MetadataResponsePartition>,
) -> Vec<PartitionInfo> {
    let mut out: Vec<PartitionInfo> = partitions
        .into_iter()
        .map(|p| PartitionInfo {
            partition: p.partition_index,
            leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
            leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
            replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
            isr: p.isr_nodes.into_iter().map(|b| b.0).collect(),
            offline_replicas: p.offline_replicas.into_iter().map(|b| b.0).collect(),
        })
        .collect();
    out.sort_by_key(|p| p.partition);
    out
}

/// Checks a topic name as the Java client does: 1 to 249 characters of `[a-zA-Z0-9._-]`,
/// and neither `.` nor `..`.
pub(crate) fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidArgument(format!("invalid topic name {name:?}: {why}")));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return bad(&format!("character {c:?} is not allowed (only a-z, A-Z, 0-9, '.', '_', '-')"));
    }
    Ok(())
}

/// Decodes a Metadata response frame (v4 to v12) with bounded reads (see `crate::wire`):
/// the same value as kafka-protocol's decoder, but a hostile array count is an error.
pub(crate) fn decode_metadata_response(mut frame: bytes::Bytes, version: i16) -> Result<MetadataResponse> {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::BrokerId;
    use crate::wire::{array_len, bool_, i16_, i32_, i32_array, need, nullable_string, skip_tags, string};
    fn decode(r: &mut bytes::Bytes, version: i16) -> crate::wire::DecodeResult<MetadataResponse> {
        if !(4..=12).contains(&version) {
            return Err(format!("metadata v{version} is not decoded here"));
        }
        let flexible = version >= 9;
        i32_(r)?; // correlation id
        if flexible {
            skip_tags(r)?;
        }
        let mut resp = MetadataResponse::default().with_throttle_time_ms(i32_(r)?);
        // node id, host, port, rack (and tags)
        let n = array_len(r, flexible, if flexible { 11 } else { 12 }, "brokers")?.unwrap_or(0);
        resp.brokers = Vec::with_capacity(n);
        for _ in 0..n {
            let b = MetadataResponseBroker::default()
                .with_node_id(BrokerId(i32_(r)?))
                .with_host(string(r, flexible)?)
                .with_port(i32_(r)?)
                .with_rack(nullable_string(r, flexible)?);
            if flexible {
                skip_tags(r)?;
            }
            resp.brokers.push(b);
        }
        resp.cluster_id = nullable_string(r, flexible)?;
        resp.controller_id = BrokerId(i32_(r)?);
        // error code, name, (topic id), is_internal, partitions, (authorized operations), (tags)
        let min_topic = 2 + if flexible { 1 + 1 + 1 } else { 2 + 4 } + 1
            + if version >= 10 { 16 } else { 0 }
            + if version >= 8 { 4 } else { 0 };
        let n = array_len(r, flexible, min_topic, "topics")?.unwrap_or(0);
        resp.topics = Vec::with_capacity(n);
        for _ in 0..n {
            let mut t = MetadataResponseTopic::default().with_error_code(i16_(r)?);
            t.name = nullable_string(r, flexible)?.map(TopicName);
            if version >= 10 {
                need(r, 16)?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&r.split_to(16));
                t.topic_id = uuid::Uuid::from_bytes(id);
            }
            t.is_internal = bool_(r)?;
            // error code, index, leader, (epoch), replica/isr/(offline) arrays, (tags)
            let arrays = if version >= 5 { 3 } else { 2 };
            let min_part = 2 + 4 + 4 + if version >= 7 { 4 } else { 0 }
                + if flexible { arrays + 1 } else { 4 * arrays };
            let np = array_len(r, flexible, min_part, "partitions")?.unwrap_or(0);
            t.partitions = Vec::with_capacity(np);
            for _ in 0..np {
                let mut p = MetadataResponsePartition::default()
                    .with_error_code(i16_(r)?)
                    .with_partition_index(i32_(r)?)
                    .with_leader_id(BrokerId(i32_(r)?));
                if version >= 7 {
                    p.leader_epoch = i32_(r)?;
                }
                p.replica_nodes = i32_array(r, flexible)?.into_iter().map(BrokerId).collect();
                p.isr_nodes = i32_array(r, flexible)?.into_iter().map(BrokerId).collect();
                if version >= 5 {
                    p.offline_replicas = i32_array(r, flexible)?.into_iter().map(BrokerId).collect();
                }
                if flexible {
                    skip_tags(r)?;
                }
                t.partitions.push(p);
            }
            if version >= 8 {
                t.topic_authorized_operations = i32_(r)?;
            }
            if flexible {
                skip_tags(r)?;
            }
            resp.topics.push(t);
        }
        if (8..=10).contains(&version) {
            resp.cluster_authorized_operations = i32_(r)?;
        }
        if flexible {
            skip_tags(r)?;
        }
        Ok(resp)
    }
    decode(&mut frame, version).map_err(|detail| Error::Protocol {
        broker: "metadata".into(),
        detail: format!("Metadata v{version} response: {detail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our bounded decoder gives the same value as kafka-protocol's, for every version used.
    #[test]
    fn metadata_decoder_agrees_with_the_generic_one() {
        use kafka_protocol::messages::metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        };
        use kafka_protocol::messages::BrokerId;
        for version in 4..=12i16 {
            let mut resp = MetadataResponse::default()
                .with_throttle_time_ms(3)
                .with_brokers(vec![
                    MetadataResponseBroker::default().with_node_id(BrokerId(1)).with_host(StrBytes::from_static_str("h1")).with_port(9092),
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(2))
                        .with_host(StrBytes::from_static_str("h2"))
                        .with_port(9093)
                        .with_rack(Some(StrBytes::from_static_str("r1"))),
                ])
                .with_cluster_id(Some(StrBytes::from_static_str("cid")))
                .with_controller_id(BrokerId(2))
                .with_topics(vec![
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                        .with_is_internal(false)
                        .with_partitions(vec![MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(BrokerId(1))
                            .with_leader_epoch(if version >= 7 { 4 } else { -1 })
                            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                            .with_isr_nodes(vec![BrokerId(1)])
                            .with_offline_replicas(if version >= 5 { vec![BrokerId(2)] } else { vec![] })]),
                    MetadataResponseTopic::default()
                        .with_error_code(3)
                        .with_name(Some(TopicName(StrBytes::from_static_str("missing")))),
                ]);
            if version >= 10 {
                resp.topics[0].topic_id = uuid::Uuid::from_bytes([7; 16]);
            }
            if version >= 8 {
                resp.topics[0].topic_authorized_operations = 42;
            }
            if (8..=10).contains(&version) {
                resp.cluster_authorized_operations = 9;
            }
            let frame = crate::network::testing::encode_response::<MetadataRequest>(5, version, &resp).slice(4..);
            let ours = decode_metadata_response(frame.clone(), version).unwrap();
            let theirs = crate::protocol::decode_response::<MetadataRequest>(frame.clone(), version, "t").unwrap();
            assert_eq!(ours, theirs, "metadata v{version}");
            for cut in 0..frame.len() {
                assert!(decode_metadata_response(frame.slice(..cut), version).is_err(), "v{version} prefix {cut}");
            }
        }
        // A broker count of i32::MAX in 20 bytes is refused, not reserved.
        let mut f = vec![0, 0, 0, 1, 0, 0, 0, 0];
        f.extend_from_slice(&i32::MAX.to_be_bytes());
        let e = decode_metadata_response(bytes::Bytes::from(f), 8).unwrap_err().to_string();
        assert!(e.contains("array of 2147483647 elements"), "{e}");
    }

    #[test]
    fn topic_names_are_checked_like_the_java_client() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        for bad in ["", ".", "..", "with space", "ümlaut", "a/b"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn topic_ids_display_as_url_safe_base64() {
        // 16 zero bytes then all-ones: checks padding-free output and the URL-safe alphabet.
        assert_eq!(TopicId([0; 16]).to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(TopicId([0xff; 16]).to_string(), "_____________________w");
    }

    #[test]
    fn broker_addresses_bracket_ipv6_hosts() {
        let b = BrokerInfo { id: 1, host: "::1".into(), port: 9092, rack: None };
        assert_eq!(b.addr(), "[::1]:9092");
    }
}
