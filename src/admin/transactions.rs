//! Transactions and producers: list, describe, abort hanging transactions, fence.
//!
//! - [`AdminClient::list_transactions`]: ListTransactions to every broker (each is the
//!   coordinator of some transactional ids), answers kept per broker and merged.
//! - [`AdminClient::describe_transactions`]: DescribeTransactions to each id's transaction
//!   coordinator (looked up in one batched FindCoordinator, KIP-699).
//! - [`AdminClient::describe_producers`]: DescribeProducers to each partition's leader (or to
//!   one chosen broker), the producers a partition knows and their open transactions.
//! - [`AdminClient::abort_transaction`]: WriteTxnMarkers with an abort marker to a
//!   partition's leader, for a hanging transaction (KIP-664).
//! - [`AdminClient::fence_producers`]: InitProducerId with each transactional id at its
//!   coordinator, which bumps the epoch and so fences the producers using the id.
//!
//! ```no_run
//! # async fn demo(admin: ferrokafka::admin::AdminClient) -> ferrokafka::Result<()> {
//! use std::time::Duration;
//! use ferrokafka::admin::{AbortTransactionSpec, ListTransactionsOptions, TransactionState};
//! use ferrokafka::consumer::TopicPartition;
//!
//! // Transactions open for more than an hour.
//! let old = admin
//!     .list_transactions(ListTransactionsOptions {
//!         states: vec![TransactionState::Ongoing],
//!         duration_filter: Some(Duration::from_secs(3600)),
//!         ..Default::default()
//!     })
//!     .await?
//!     .all()?;
//! println!("{old:?}");
//!
//! // Abort the transaction that holds back partition orders-0.
//! let tp = TopicPartition::new("orders", 0);
//! let producers = admin.describe_producers([tp.clone()], Default::default()).await?;
//! for p in &producers[&tp].as_ref().map_err(Clone::clone)?.active_producers {
//!     if p.current_transaction_start_offset.is_some() {
//!         admin.abort_transaction(AbortTransactionSpec::from_producer_state(tp.clone(), p)?, Default::default()).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest, InitProducerIdRequest,
    ListTransactionsRequest, ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::route::{needs_version, Target, TXN_KEY};
use super::AdminClient;
use crate::consumer::TopicPartition;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::validate_topic_name;

/// The state of a transaction as its coordinator reports it (Java's `TransactionState`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionState {
    /// Records or offsets have been added; neither commit nor abort has begun.
    Ongoing,
    /// The coordinator is writing abort markers.
    PrepareAbort,
    /// The coordinator is writing commit markers.
    PrepareCommit,
    /// The last transaction was aborted.
    CompleteAbort,
    /// The last transaction was committed.
    CompleteCommit,
    /// The transactional id is registered and no transaction has started.
    Empty,
    /// The coordinator is fencing the producer (a newer one registered the id, or the
    /// transaction timed out) and will abort the open transaction.
    PrepareEpochFence,
    /// A state this client does not know, with the broker's name for it. As a filter of
    /// [`AdminClient::list_transactions`] it is sent as is (the broker reports names it does
    /// not know in [`ListTransactionsResult::unknown_state_filters`]).
    Unknown(String),
}

impl TransactionState {
    /// The broker's name of the state (`Ongoing`, `PrepareAbort`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::Empty => "Empty",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
            TransactionState::Unknown(s) => s,
        }
    }

    /// The state the broker names `s`; [`TransactionState::Unknown`] for a name this client
    /// does not know.
    pub fn parse(s: &str) -> TransactionState {
        match s {
            "Ongoing" => TransactionState::Ongoing,
            "PrepareAbort" => TransactionState::PrepareAbort,
            "PrepareCommit" => TransactionState::PrepareCommit,
            "CompleteAbort" => TransactionState::CompleteAbort,
            "CompleteCommit" => TransactionState::CompleteCommit,
            "Empty" => TransactionState::Empty,
            "PrepareEpochFence" => TransactionState::PrepareEpochFence,
            other => TransactionState::Unknown(other.to_owned()),
        }
    }
}

impl std::fmt::Display for TransactionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of [`AdminClient::list_transactions`] (Java's `ListTransactionsOptions`). Every
/// filter that is set must match; the defaults list every transaction.
#[derive(Debug, Clone, Default)]
pub struct ListTransactionsOptions {
    /// Only transactions in one of these states. Default empty: any state.
    pub states: Vec<TransactionState>,
    /// Only transactions of one of these producer ids. Default empty: any producer.
    pub producer_ids: Vec<i64>,
    /// Only transactions open for longer than this (ListTransactions v1, KIP-994, Kafka
    /// 3.8+). Default `None`: any duration. A broker without v1 answers
    /// [`Error::UnsupportedVersion`] naming the filter.
    pub duration_filter: Option<Duration>,
    /// Only transactional ids matching this regular expression (the broker's Java regex;
    /// ListTransactions v2, KIP-1152, Kafka 4.1+). Default `None` (and `Some("")`): any id.
    /// A broker without v2 answers [`Error::UnsupportedVersion`] naming the filter.
    pub transactional_id_pattern: Option<String>,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// One transactional id as [`AdminClient::list_transactions`] lists it (Java's
/// `TransactionListing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id currently registered for it.
    pub producer_id: i64,
    /// The state of its current (or last) transaction.
    pub state: TransactionState,
}

/// The answer of [`AdminClient::list_transactions`]: every broker's listing, or its error.
#[derive(Debug, Clone)]
pub struct ListTransactionsResult {
    /// Per broker id (each broker coordinates a share of the transactional ids): the
    /// transactions it listed, sorted by transactional id, or why it could not list them
    /// (a broker lacking the version a filter needs: [`Error::UnsupportedVersion`]).
    pub by_broker: BTreeMap<i32, Result<Vec<TransactionListing>>>,
    /// State filters some broker did not know (their names), sorted.
    pub unknown_state_filters: BTreeSet<String>,
}

impl ListTransactionsResult {
    /// Every broker's listing merged and sorted by transactional id, or the first broker's
    /// error (by broker id) when one could not list (as Java's `all()`).
    pub fn all(&self) -> Result<Vec<TransactionListing>> {
        let mut all = Vec::new();
        for r in self.by_broker.values() {
            all.extend(r.as_ref().map_err(Clone::clone)?.iter().cloned());
        }
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(all)
    }
}

/// Options of [`AdminClient::describe_transactions`].
#[derive(Debug, Clone, Default)]
pub struct DescribeTransactionsOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// A transactional id's state at its coordinator (Java's `TransactionDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The broker id of the transaction coordinator that answered.
    pub coordinator_id: i32,
    /// The state of the current (or last) transaction.
    pub state: TransactionState,
    /// The producer id registered for the transactional id.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The transaction timeout the producer registered (`transaction.timeout.ms`).
    pub transaction_timeout: Duration,
    /// When the current transaction started (ms since the epoch); `None` when none is open.
    pub transaction_start_time_ms: Option<i64>,
    /// The partitions in the current transaction (while it completes, those still without
    /// a marker).
    pub topic_partitions: BTreeSet<TopicPartition>,
}

/// Options of [`AdminClient::describe_producers`] (Java's `DescribeProducersOptions`).
#[derive(Debug, Clone, Default)]
pub struct DescribeProducersOptions {
    /// Ask this broker rather than each partition's leader (for example a follower, to
    /// compare its producer state with the leader's). Its NOT_LEADER_OR_FOLLOWER answer is
    /// then the partition's error, not retried. Default `None`: each partition's leader.
    pub broker_id: Option<i32>,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// The producers a partition knows (Java's `PartitionProducerState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProducerState {
    /// The producers with state on the partition, in the broker's order.
    pub active_producers: Vec<ProducerState>,
}

/// One producer's state on a partition (Java's `ProducerState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// The producer's epoch as the partition last saw it.
    pub producer_epoch: i32,
    /// The sequence number of its last record batch; -1 when none.
    pub last_sequence: i32,
    /// The timestamp of its last write (ms since the epoch); -1 when unknown.
    pub last_timestamp_ms: i64,
    /// The coordinator epoch of its last transaction marker; `None` when it never had one.
    pub coordinator_epoch: Option<i32>,
    /// The first offset of its open transaction on the partition; `None` when no
    /// transaction is open. An open transaction holds back the last stable offset.
    pub current_transaction_start_offset: Option<i64>,
}

/// Which transaction [`AdminClient::abort_transaction`] aborts on which partition (Java's
/// `AbortTransactionSpec`): the values [`AdminClient::describe_producers`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortTransactionSpec {
    /// The partition whose open transaction is aborted.
    pub topic_partition: TopicPartition,
    /// The producer id of the transaction.
    pub producer_id: i64,
    /// The producer epoch of the transaction.
    pub producer_epoch: i16,
    /// The coordinator epoch for the marker: the producer's last coordinator epoch on the
    /// partition (0 when it never had one, as `kafka-transactions.sh abort` does).
    pub coordinator_epoch: i32,
}

impl AbortTransactionSpec {
    /// The spec aborting `producer`'s open transaction on `topic_partition`, from
    /// [`AdminClient::describe_producers`]. `InvalidArgument` when the producer's epoch does
    /// not fit a producer epoch (16 bits).
    pub fn from_producer_state(topic_partition: TopicPartition, producer: &ProducerState) -> Result<AbortTransactionSpec> {
        let producer_epoch = i16::try_from(producer.producer_epoch).map_err(|_| {
            Error::InvalidArgument(format!(
                "producer {} on {}-{}: epoch {} is not a 16-bit producer epoch",
                producer.producer_id, topic_partition.topic, topic_partition.partition, producer.producer_epoch
            ))
        })?;
        Ok(AbortTransactionSpec {
            topic_partition,
            producer_id: producer.producer_id,
            producer_epoch,
            coordinator_epoch: producer.coordinator_epoch.unwrap_or(0).max(0),
        })
    }

    fn validate(&self) -> Result<()> {
        let tp = &self.topic_partition;
        validate_partition(tp)?;
        let bad = |what: &str, v: i64| {
            Err(Error::InvalidArgument(format!(
                "abort_transaction on {}-{}: {what} must not be negative (got {v})",
                tp.topic, tp.partition
            )))
        };
        if self.producer_id < 0 {
            return bad("producer_id", self.producer_id);
        }
        if self.producer_epoch < 0 {
            return bad("producer_epoch", self.producer_epoch.into());
        }
        if self.coordinator_epoch < 0 {
            return bad("coordinator_epoch", self.coordinator_epoch.into());
        }
        Ok(())
    }
}

/// Options of [`AdminClient::abort_transaction`].
#[derive(Debug, Clone, Default)]
pub struct AbortTransactionOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::fence_producers`] (Java's `FenceProducersOptions`).
#[derive(Debug, Clone, Default)]
pub struct FenceProducersOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    /// Also the transaction timeout sent with InitProducerId, as the Java client does
    /// (`None`: the client's `request_timeout`); the broker refuses one above its
    /// `transaction.max.timeout.ms` (INVALID_TRANSACTION_TIMEOUT).
    pub timeout: Option<Duration>,
}

/// The new identity of a fenced transactional id: producers with an older epoch are fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FencedProducer {
    /// The producer id registered for the transactional id.
    pub producer_id: i64,
    /// The new (bumped) producer epoch.
    pub producer_epoch: i16,
}

const LIST_TXNS_DURATION: &str = "ListTransactions with duration_filter (v1+, Kafka 3.8+)";
const LIST_TXNS_PATTERN: &str = "ListTransactions with transactional_id_pattern (v2+, Kafka 4.1+)";

impl AdminClient {
    /// Lists the transactions of every broker's transaction coordinator, with the filters of
    /// `options` (Java's `listTransactions`). A broker that cannot answer has its own error
    /// in [`ListTransactionsResult::by_broker`]; [`ListTransactionsResult::all`] merges.
    /// COORDINATOR_LOAD_IN_PROGRESS is retried within the timeout.
    pub async fn list_transactions(&self, options: ListTransactionsOptions) -> Result<ListTransactionsResult> {
        let timeout = self.call_timeout(options.timeout);
        let duration_ms = options.duration_filter.map(|d| d.as_millis().min(i64::MAX as u128) as i64);
        let pattern = options.transactional_id_pattern.filter(|p| !p.is_empty());
        let states: Vec<StrBytes> = options.states.iter().map(|s| StrBytes::from_string(s.as_str().to_owned())).collect();
        let producer_ids: Vec<ProducerId> = options.producer_ids.iter().map(|&p| ProducerId(p)).collect();
        let answers = self
            .send_to_all::<ListTransactionsRequest, _, _>(
                "ListTransactions",
                timeout,
                |version| {
                    if duration_ms.is_some() && version < 1 {
                        return Err(needs_version::<ListTransactionsRequest>(LIST_TXNS_DURATION, 1));
                    }
                    if pattern.is_some() && version < 2 {
                        return Err(needs_version::<ListTransactionsRequest>(LIST_TXNS_PATTERN, 2));
                    }
                    let mut req = ListTransactionsRequest::default()
                        .with_state_filters(states.clone())
                        .with_producer_id_filters(producer_ids.clone());
                    if let Some(d) = duration_ms {
                        req = req.with_duration_filter(d);
                    }
                    if let Some(p) = &pattern {
                        req = req.with_transactional_id_pattern(Some(StrBytes::from_string(p.clone())));
                    }
                    Ok(req)
                },
                |resp| {
                    // Waited out; any other error is the broker's result (below).
                    if resp.error_code == ErrorCode::CoordinatorLoadInProgress.code() {
                        Error::check_code(resp.error_code, "ListTransactions", None, None, None)?;
                    }
                    Ok(())
                },
            )
            .await?;
        let mut by_broker = BTreeMap::new();
        let mut unknown_state_filters = BTreeSet::new();
        for (id, answer) in answers {
            let listing = match answer {
                Err(e) => Err(e),
                Ok(resp) => {
                    unknown_state_filters.extend(resp.unknown_state_filters.iter().map(|s| s.to_string()));
                    broker_code(resp.error_code, "ListTransactions", id).map(|()| {
                        let mut l: Vec<TransactionListing> = resp
                            .transaction_states
                            .into_iter()
                            .map(|t| TransactionListing {
                                transactional_id: t.transactional_id.0.to_string(),
                                producer_id: t.producer_id.0,
                                state: TransactionState::parse(&t.transaction_state),
                            })
                            .collect();
                        l.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
                        l
                    })
                }
            };
            by_broker.insert(id, listing);
        }
        Ok(ListTransactionsResult { by_broker, unknown_state_filters })
    }

    /// Describes transactional ids at their transaction coordinators (Java's
    /// `describeTransactions`): one result per distinct id; an id the coordinator does not
    /// know is TRANSACTIONAL_ID_NOT_FOUND beside the others' descriptions. A coordinator
    /// that moved (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) is looked up again and
    /// COORDINATOR_LOAD_IN_PROGRESS waited out, within the timeout.
    pub async fn describe_transactions<S: AsRef<str>>(
        &self,
        transactional_ids: impl IntoIterator<Item = S>,
        options: DescribeTransactionsOptions,
    ) -> Result<BTreeMap<String, Result<TransactionDescription>>> {
        let ids = transactional_ids_of(transactional_ids, "describe_transactions")?;
        let timeout = self.call_timeout(options.timeout);
        Ok(self
            .per_coordinator(TXN_KEY, "DescribeTransactions", &ids, timeout, |conn, node, ids| async move {
                let version = conn.version_for::<DescribeTransactionsRequest>()?;
                let req = DescribeTransactionsRequest::default().with_transactional_ids(
                    ids.iter().map(|i| TransactionalId(StrBytes::from_string(i.clone()))).collect(),
                );
                let resp = conn.send_at(&req, version).await?;
                Ok(resp
                    .transaction_states
                    .into_iter()
                    .map(|t| {
                        let id = t.transactional_id.0.to_string();
                        let r = id_code(t.error_code, "DescribeTransactions", &id).map(|()| TransactionDescription {
                            coordinator_id: node,
                            state: TransactionState::parse(&t.transaction_state),
                            producer_id: t.producer_id.0,
                            producer_epoch: t.producer_epoch,
                            transaction_timeout: Duration::from_millis(t.transaction_timeout_ms.max(0) as u64),
                            transaction_start_time_ms: (t.transaction_start_time_ms >= 0).then_some(t.transaction_start_time_ms),
                            topic_partitions: t
                                .topics
                                .iter()
                                .flat_map(|td| {
                                    td.partitions.iter().map(|&p| TopicPartition::new(td.topic.0.to_string(), p))
                                })
                                .collect(),
                        });
                        (id, r)
                    })
                    .collect())
            })
            .await)
    }

    /// The producers each partition knows and their open transactions (Java's
    /// `describeProducers`), from each partition's leader, or from
    /// [`DescribeProducersOptions::broker_id`]. One result per distinct partition: a topic
    /// that does not exist is UNKNOWN_TOPIC_OR_PARTITION for its partitions, beside the
    /// others' states.
    pub async fn describe_producers(
        &self,
        partitions: impl IntoIterator<Item = TopicPartition>,
        options: DescribeProducersOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<PartitionProducerState>>> {
        let mut tps: Vec<TopicPartition> = partitions.into_iter().collect();
        for tp in &tps {
            validate_partition(tp)?;
        }
        tps.sort();
        tps.dedup();
        if tps.is_empty() {
            return Ok(BTreeMap::new());
        }
        let timeout = self.call_timeout(options.timeout);
        let request = &|tps: &[TopicPartition]| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in tps {
                by_topic.entry(&tp.topic).or_default().push(tp.partition);
            }
            DescribeProducersRequest::default().with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| TopicRequest::default().with_name(topic_name(t)).with_partition_indexes(ps))
                    .collect(),
            )
        };
        match options.broker_id {
            Some(id) if id < 0 => Err(Error::InvalidArgument(format!("describe_producers: broker_id {id} is negative"))),
            Some(id) => {
                let resp = self
                    .send_to::<DescribeProducersRequest, _, _>(
                        "DescribeProducers",
                        Target::Broker(id),
                        timeout,
                        |_| Ok(request(&tps)),
                        |_| Ok(()),
                    )
                    .await?;
                let mut got: BTreeMap<TopicPartition, Result<PartitionProducerState>> =
                    producer_states(resp).into_iter().filter(|(tp, _)| tps.contains(tp)).collect();
                for tp in &tps {
                    got.entry(tp.clone()).or_insert_with(|| Err(left_out("DescribeProducers", tp)));
                }
                Ok(got)
            }
            None => Ok(self
                .per_leader("DescribeProducers", &tps, timeout, |conn, tps| async move {
                    let version = conn.version_for::<DescribeProducersRequest>()?;
                    Ok(producer_states(conn.send_at(&request(&tps), version).await?))
                })
                .await),
        }
    }

    /// Aborts the open transaction `spec` names on its partition, by writing an abort marker
    /// there (WriteTxnMarkers to the partition's leader; Java's `abortTransaction`): for a
    /// hanging transaction that holds back the last stable offset. Needs CLUSTER_ACTION on
    /// the cluster where an authorizer runs. A moved leader is retried within the timeout;
    /// a wrong epoch is INVALID_PRODUCER_EPOCH, an old coordinator epoch
    /// TRANSACTION_COORDINATOR_FENCED.
    pub async fn abort_transaction(&self, spec: AbortTransactionSpec, options: AbortTransactionOptions) -> Result<()> {
        spec.validate()?;
        let timeout = self.call_timeout(options.timeout);
        let tp = spec.topic_partition.clone();
        let spec = &spec;
        let mut done = self
            .per_leader("WriteTxnMarkers", std::slice::from_ref(&tp), timeout, |conn, _| async move {
                let tp = &spec.topic_partition;
                let version = conn.version_for::<WriteTxnMarkersRequest>()?;
                let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                    .with_producer_id(ProducerId(spec.producer_id))
                    .with_producer_epoch(spec.producer_epoch)
                    .with_transaction_result(false)
                    .with_coordinator_epoch(spec.coordinator_epoch)
                    .with_topics(vec![WritableTxnMarkerTopic::default()
                        .with_name(topic_name(&tp.topic))
                        .with_partition_indexes(vec![tp.partition])])]);
                let resp = conn.send_at(&req, version).await?;
                let unexpected = || Error::Protocol {
                    broker: conn.addr().to_owned(),
                    detail: format!(
                        "WriteTxnMarkers answer {:?} is not one result for producer {} on {}-{}",
                        resp.markers, spec.producer_id, tp.topic, tp.partition
                    ),
                };
                let [marker] = resp.markers.as_slice() else { return Err(unexpected()) };
                let [topic] = marker.topics.as_slice() else { return Err(unexpected()) };
                let [partition] = topic.partitions.as_slice() else { return Err(unexpected()) };
                if marker.producer_id.0 != spec.producer_id
                    || *topic.name.0 != *tp.topic
                    || partition.partition_index != tp.partition
                {
                    return Err(unexpected());
                }
                let msg = format!(
                    "abort of producer {} epoch {} (coordinator epoch {})",
                    spec.producer_id, spec.producer_epoch, spec.coordinator_epoch
                );
                let r = Error::check_code(partition.error_code, "WriteTxnMarkers", Some(&msg), Some(&tp.topic), Some(tp.partition));
                Ok(vec![(tp.clone(), r)])
            })
            .await;
        done.remove(&tp).unwrap_or_else(|| Err(left_out("WriteTxnMarkers", &tp)))
    }

    /// Fences the producers of transactional ids (Java's `fenceProducers`): InitProducerId at
    /// each id's transaction coordinator bumps the id's epoch, so that a producer still using
    /// it fails with PRODUCER_FENCED (fatal) and its open transaction is aborted. One result
    /// per distinct id, with the new producer id and epoch. CONCURRENT_TRANSACTIONS (the
    /// coordinator is still ending a transaction) and a moved coordinator are retried within
    /// the timeout. An id that was never used is registered.
    pub async fn fence_producers<S: AsRef<str>>(
        &self,
        transactional_ids: impl IntoIterator<Item = S>,
        options: FenceProducersOptions,
    ) -> Result<BTreeMap<String, Result<FencedProducer>>> {
        let ids = transactional_ids_of(transactional_ids, "fence_producers")?;
        let timeout = self.call_timeout(options.timeout);
        let txn_timeout_ms = Self::timeout_ms(options.timeout.unwrap_or(self.core.config.request_timeout));
        Ok(self
            .per_coordinator(TXN_KEY, "InitProducerId", &ids, timeout, |conn, _, ids| async move {
                let version = conn.version_for::<InitProducerIdRequest>()?;
                let calls = ids.into_iter().map(|id| {
                    let conn = &conn;
                    async move {
                        let req = InitProducerIdRequest::default()
                            .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id.clone()))))
                            .with_transaction_timeout_ms(txn_timeout_ms);
                        let req = if version >= 3 { req.with_producer_id(ProducerId(-1)).with_producer_epoch(-1) } else { req };
                        let resp = conn.send_at(&req, version).await?;
                        let r = id_code(resp.error_code, "InitProducerId", &id)
                            .map(|()| FencedProducer { producer_id: resp.producer_id.0, producer_epoch: resp.producer_epoch });
                        Ok::<_, Error>((id, r))
                    }
                });
                futures::future::join_all(calls).await.into_iter().collect()
            })
            .await)
    }
}

/// The distinct transactional ids, sorted; `InvalidArgument` for an empty one.
fn transactional_ids_of<S: AsRef<str>>(ids: impl IntoIterator<Item = S>, call: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let id = id.as_ref();
        if id.is_empty() {
            return Err(Error::InvalidArgument(format!("{call}: a transactional id is empty")));
        }
        out.push(id.to_owned());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A valid topic name and a non-negative partition.
fn validate_partition(tp: &TopicPartition) -> Result<()> {
    validate_topic_name(&tp.topic)?;
    if tp.partition < 0 {
        return Err(Error::InvalidArgument(format!("topic {}: partition {} is negative", tp.topic, tp.partition)));
    }
    Ok(())
}

/// A broker error about one transactional id, which its message names.
fn id_error(code: ErrorCode, api: &'static str, id: &str) -> Error {
    Error::broker(code, api, Some(format!("transactional id {id:?}: {}", code.description())), None, None)
}

/// `Ok` for 0, else the broker error of broker `id`'s whole answer, which its message names.
fn broker_code(code: i16, api: &'static str, id: i32) -> Result<()> {
    match ErrorCode::from_code(code) {
        None => Ok(()),
        Some(c) => Err(Error::broker(c, api, Some(format!("broker {id}: {}", c.description())), None, None)),
    }
}

/// `Ok` for 0, else [`id_error`].
fn id_code(code: i16, api: &'static str, id: &str) -> Result<()> {
    match ErrorCode::from_code(code) {
        None => Ok(()),
        Some(c) => Err(id_error(c, api, id)),
    }
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// The error of a partition the broker's answer left out.
fn left_out(api: &'static str, tp: &TopicPartition) -> Error {
    Error::broker(
        ErrorCode::UnknownTopicOrPartition,
        api,
        Some("the broker's answer has no result for the partition".into()),
        Some(tp.topic.clone()),
        Some(tp.partition),
    )
}

/// Each partition of a DescribeProducers answer with its producers or its error.
fn producer_states(resp: DescribeProducersResponse) -> Vec<(TopicPartition, Result<PartitionProducerState>)> {
    let mut out = Vec::new();
    for t in resp.topics {
        let topic = t.name.0.to_string();
        for p in t.partitions {
            let r = Error::check_code(
                p.error_code,
                "DescribeProducers",
                p.error_message.as_deref(),
                Some(&topic),
                Some(p.partition_index),
            )
            .map(|()| PartitionProducerState {
                active_producers: p
                    .active_producers
                    .iter()
                    .map(|s| ProducerState {
                        producer_id: s.producer_id.0,
                        producer_epoch: s.producer_epoch,
                        last_sequence: s.last_sequence,
                        last_timestamp_ms: s.last_timestamp,
                        coordinator_epoch: (s.coordinator_epoch >= 0).then_some(s.coordinator_epoch),
                        current_transaction_start_offset: (s.current_txn_start_offset >= 0)
                            .then_some(s.current_txn_start_offset),
                    })
                    .collect(),
            });
            out.push((TopicPartition::new(topic.clone(), p.partition_index), r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_broker_names() {
        for s in [
            TransactionState::Ongoing,
            TransactionState::PrepareAbort,
            TransactionState::PrepareCommit,
            TransactionState::CompleteAbort,
            TransactionState::CompleteCommit,
            TransactionState::Empty,
            TransactionState::PrepareEpochFence,
            TransactionState::Unknown("Dead".into()),
        ] {
            assert_eq!(TransactionState::parse(s.as_str()), s);
        }
        assert_eq!(TransactionState::parse("Dead"), TransactionState::Unknown("Dead".into()));
    }

    #[test]
    fn bad_input_is_refused_before_sending() {
        assert!(matches!(transactional_ids_of(["a", ""], "x"), Err(Error::InvalidArgument(_))));
        assert_eq!(transactional_ids_of(["b", "a", "b"], "x").unwrap(), vec!["a", "b"]);
        let spec = |pid, epoch, ce, p| AbortTransactionSpec {
            topic_partition: TopicPartition::new("t", p),
            producer_id: pid,
            producer_epoch: epoch,
            coordinator_epoch: ce,
        };
        assert!(spec(1, 0, 0, 0).validate().is_ok());
        for bad in [spec(-1, 0, 0, 0), spec(1, -1, 0, 0), spec(1, 0, -1, 0), spec(1, 0, 0, -1)] {
            assert!(matches!(bad.validate(), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
        let producer = ProducerState {
            producer_id: 7,
            producer_epoch: 70_000,
            last_sequence: 0,
            last_timestamp_ms: 0,
            coordinator_epoch: None,
            current_transaction_start_offset: Some(3),
        };
        assert!(matches!(
            AbortTransactionSpec::from_producer_state(TopicPartition::new("t", 0), &producer),
            Err(Error::InvalidArgument(_))
        ));
        let spec = AbortTransactionSpec::from_producer_state(
            TopicPartition::new("t", 0),
            &ProducerState { producer_epoch: 4, ..producer },
        )
        .unwrap();
        assert_eq!((spec.producer_id, spec.producer_epoch, spec.coordinator_epoch), (7, 4, 0));
    }

    mod scripted {
        use std::sync::{Arc, Mutex};

        use kafka_protocol::messages::describe_transactions_response::TransactionState as DescribedState;
        use kafka_protocol::messages::find_coordinator_response::Coordinator as FoundCoordinator;
        use kafka_protocol::messages::{
            ApiVersionsRequest, BrokerId, DescribeTransactionsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
            InitProducerIdResponse, ListTransactionsResponse, MetadataRequest,
        };

        use super::*;
        use crate::admin::AdminConfig;
        use crate::network::testing::{api_versions, encode_response, single_node_metadata, Received, TcpBroker, TcpReply};

        /// ApiVersions, Metadata, FindCoordinator (batched v4+), InitProducerId,
        /// DescribeTransactions, and ListTransactions only up to v1 (a Kafka 3.9 broker).
        const RANGES: &[(i16, i16, i16)] = &[(18, 0, 4), (3, 0, 12), (10, 0, 6), (22, 0, 5), (65, 0, 0), (66, 0, 1)];

        #[derive(Default)]
        struct Seen {
            /// Api keys of the requests after the handshakes, in order.
            apis: Vec<i16>,
            /// The duration filter of each ListTransactions request.
            duration_filters: Vec<i64>,
        }

        /// One node: transactional id `moved` is NOT_COORDINATOR at the first
        /// DescribeTransactions, `gone` is unknown; InitProducerId answers
        /// CONCURRENT_TRANSACTIONS twice, then producer 42 epoch 3.
        async fn broker(seen: Arc<Mutex<Seen>>) -> TcpBroker {
            TcpBroker::start(move |req: &Received, host, port| {
                let (corr, v) = (req.header.correlation_id, req.header.request_api_version);
                let key = req.header.request_api_key;
                let mut s = seen.lock().unwrap();
                if key != 18 {
                    s.apis.push(key);
                }
                let tries = s.apis.iter().filter(|k| **k == key).count();
                TcpReply::Frame(match key {
                    18 => encode_response::<ApiVersionsRequest>(corr, v, &api_versions(RANGES)),
                    3 => encode_response::<MetadataRequest>(corr, v, &single_node_metadata(host, port, "t", 1)),
                    10 => {
                        let r: FindCoordinatorRequest = req.decode();
                        let found = r.coordinator_keys.iter().map(|k| {
                            FoundCoordinator::default()
                                .with_key(k.clone())
                                .with_node_id(BrokerId(0))
                                .with_host(StrBytes::from_string(host.to_owned()))
                                .with_port(port)
                        });
                        encode_response::<FindCoordinatorRequest>(
                            corr,
                            v,
                            &FindCoordinatorResponse::default().with_coordinators(found.collect()),
                        )
                    }
                    65 => {
                        let r: DescribeTransactionsRequest = req.decode();
                        let states = r.transactional_ids.iter().map(|id| {
                            let code = match &*id.0 {
                                "moved" if tries == 1 => ErrorCode::NotCoordinator.code(),
                                "gone" => ErrorCode::TransactionalIdNotFound.code(),
                                _ => 0,
                            };
                            DescribedState::default()
                                .with_transactional_id(id.clone())
                                .with_error_code(code)
                                .with_transaction_state(StrBytes::from_static_str("Ongoing"))
                                .with_producer_id(ProducerId(7))
                                .with_transaction_start_time_ms(-1)
                        });
                        encode_response::<DescribeTransactionsRequest>(
                            corr,
                            v,
                            &DescribeTransactionsResponse::default().with_transaction_states(states.collect()),
                        )
                    }
                    22 => {
                        let resp = if tries <= 2 {
                            InitProducerIdResponse::default().with_error_code(ErrorCode::ConcurrentTransactions.code())
                        } else {
                            InitProducerIdResponse::default().with_producer_id(ProducerId(42)).with_producer_epoch(3)
                        };
                        encode_response::<InitProducerIdRequest>(corr, v, &resp)
                    }
                    66 => {
                        let r: ListTransactionsRequest = req.decode();
                        s.duration_filters.push(r.duration_filter);
                        encode_response::<ListTransactionsRequest>(corr, v, &ListTransactionsResponse::default())
                    }
                    other => panic!("unexpected api {other}"),
                })
            })
            .await
        }

        async fn admin(b: &TcpBroker) -> AdminClient {
            let mut config = AdminConfig::new(b.addr()).default_api_timeout(Duration::from_secs(5));
            config.client.retry_backoff = Duration::from_millis(10);
            AdminClient::new(config).await.unwrap()
        }

        #[tokio::test]
        async fn a_moved_coordinator_is_looked_up_again_and_each_id_keeps_its_own_result() {
            let seen = Arc::new(Mutex::new(Seen::default()));
            let b = broker(seen.clone()).await;
            let admin = admin(&b).await;
            let r = admin.describe_transactions(["moved", "gone", "fine", "fine"], Default::default()).await.unwrap();
            assert_eq!(r.len(), 3, "{r:?}");
            assert_eq!(r["moved"].as_ref().unwrap().state, TransactionState::Ongoing);
            assert_eq!(r["fine"].as_ref().unwrap().producer_id, 7);
            let e = r["gone"].as_ref().unwrap_err();
            assert_eq!(e.code(), Some(ErrorCode::TransactionalIdNotFound));
            assert!(e.to_string().contains("\"gone\""), "{e}");
            let apis: Vec<i16> = seen.lock().unwrap().apis.iter().copied().filter(|k| *k != 3).collect();
            // Only `moved` is looked up and asked again.
            assert_eq!(apis, vec![10, 65, 10, 65], "FindCoordinator, DescribeTransactions, then again");
        }

        #[tokio::test]
        async fn fencing_waits_out_concurrent_transactions() {
            let seen = Arc::new(Mutex::new(Seen::default()));
            let b = broker(seen.clone()).await;
            let admin = admin(&b).await;
            let r = admin.fence_producers(["zombie"], Default::default()).await.unwrap();
            assert_eq!(r["zombie"].as_ref().unwrap(), &FencedProducer { producer_id: 42, producer_epoch: 3 });
            let inits = seen.lock().unwrap().apis.iter().filter(|k| **k == 22).count();
            assert_eq!(inits, 3, "two CONCURRENT_TRANSACTIONS answers, then the fence");
        }

        #[tokio::test]
        async fn a_filter_a_broker_lacks_is_its_error_naming_the_filter_broker_and_range() {
            let seen = Arc::new(Mutex::new(Seen::default()));
            let b = broker(seen.clone()).await;
            let admin = admin(&b).await;
            let options = ListTransactionsOptions { transactional_id_pattern: Some("x.*".into()), ..Default::default() };
            let r = admin.list_transactions(options).await.unwrap();
            match &r.by_broker[&0] {
                Err(Error::UnsupportedVersion { broker, api, client_min: 2, broker_range: Some((0, 1)), .. }) => {
                    assert!(api.contains("transactional_id_pattern") && broker.contains(&b.addr()), "{api} {broker}");
                }
                other => panic!("{other:?}"),
            }
            assert!(r.all().is_err());
            assert!(seen.lock().unwrap().duration_filters.is_empty(), "nothing sent with a filter the broker lacks");
            let options = ListTransactionsOptions { duration_filter: Some(Duration::from_secs(2)), ..Default::default() };
            assert!(admin.list_transactions(options).await.unwrap().all().unwrap().is_empty());
            assert_eq!(admin.list_transactions(Default::default()).await.unwrap().all().unwrap(), vec![]);
            assert_eq!(seen.lock().unwrap().duration_filters, vec![2000, -1], "v1 carries the filter, -1 for none");
        }
    }
}
