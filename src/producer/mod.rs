//! The producer: Java-compatible partitioning, batching, compression, acks 0/1/all and
//! idempotence (on by default).
//!
//! ```no_run
//! # async fn demo() -> ferrokafka::Result<()> {
//! use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
//!
//! let producer = Producer::new(ProducerConfig::new("127.0.0.1:9092")).await?;
//! // `send` waits only for buffer room; the returned future resolves on acknowledgement.
//! let delivery = producer.send(ProducerRecord::new("orders").key("order-1").value("42")).await?;
//! let meta = delivery.await?;
//! println!("written to {}-{} at offset {}", meta.topic, meta.partition, meta.offset);
//! producer.close(std::time::Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
//!
//! The path of a record: [`Producer::send`] picks the partition (see [`partitioner`]),
//! reserves buffer memory and appends to the partition's open batch in the
//! RecordAccumulator; the Sender task drains ready batches into produce requests and
//! resolves each record's [`DeliveryFuture`].

mod accumulator;
mod config;
mod identity;
pub mod partitioner;
pub(crate) mod request;
pub(crate) mod sender;
#[cfg(test)]
mod scripted_tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub use accumulator::{DeliveryFuture, RecordMetadata};
pub use config::{Acks, Compression, ProducerConfig};
pub use partitioner::{partition_for_key, Partitioner};
pub use crate::record::Header;

use crate::client::ClientCore;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::{validate_topic_name, PartitionInfo};
use crate::consumer::{ConsumerGroupMetadata, OffsetAndMetadata, TopicPartition};
use crate::txn::manager::TransactionManager;
use accumulator::{AccumulatorConfig, TopicQueues, TopicView};
pub(crate) use accumulator::RecordAccumulator;
pub(crate) use identity::ProducerIdentity;
use sender::{Sender, SenderConfig, TransactionHooks};

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// An explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key; records with equal keys go to the same partition.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone on compacted topics.
    pub value: Option<Bytes>,
    /// Headers, in order; keys may repeat and values may be null.
    pub headers: Vec<Header>,
    /// The create time in ms since the epoch; `None` takes the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, value or headers yet.
    pub fn new(topic: impl Into<String>) -> ProducerRecord {
        ProducerRecord { topic: topic.into(), ..Default::default() }
    }
    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }
    /// Sets an explicit partition.
    pub fn partition(mut self, p: i32) -> Self {
        self.partition = Some(p);
        self
    }
    /// Adds a header (keys may repeat).
    pub fn header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push(Header { key: key.into(), value });
        self
    }
    /// Sets the create timestamp (ms since the epoch).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }

    /// An upper bound of the record's encoded size in a batch of its own.
    fn size_upper_bound(&self) -> usize {
        const BATCH_HEADER: usize = 61;
        const RECORD_OVERHEAD: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;
        let headers: usize = self.headers.iter().map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, |v| v.len())).sum();
        BATCH_HEADER
            + RECORD_OVERHEAD
            + self.key.as_ref().map_or(0, |k| k.len())
            + self.value.as_ref().map_or(0, |v| v.len())
            + headers
    }
}

/// An asynchronous Kafka producer. Cheap to clone; clones share one producer.
///
/// When the last clone is dropped without [`Producer::close`], the background sender still
/// sends what was queued (within `delivery_timeout`) and then stops.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<ClientCore>,
    acc: Arc<RecordAccumulator>,
    cfg: ProducerConfig,
    identity: Arc<Mutex<Option<ProducerIdentity>>>,
    /// With `transactional_id`: the transaction state machine.
    txn: Option<Arc<TransactionManager>>,
    /// Resolves when the sender thread has finished.
    sender_done: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Let the sender finish what is queued, then stop.
        self.acc.begin_close();
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("config", &self.inner.cfg).finish()
    }
}

impl Producer {
    /// Validates the config, connects, and (with idempotence) obtains a producer id.
    pub async fn new(config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let core = ClientCore::connect(config.client.clone()).await?;
        // A transactional producer gets its id from its coordinator in init_transactions.
        let identity = if config.enable_idempotence && config.transactional_id.is_none() {
            Some(sender::init_producer_id(&core, config.max_block).await?)
        } else {
            None
        };
        let acc = Arc::new(RecordAccumulator::new(AccumulatorConfig {
            batch_size: config.batch_size,
            max_uncompressed: config.max_request_size,
            linger: config.linger,
            compression: config.compression,
            levels: crate::record::compression::Levels {
                gzip: config.compression_gzip_level,
                zstd: config.compression_zstd_level,
            },
            buffer_memory: config.buffer_memory,
        }));
        let identity = Arc::new(Mutex::new(identity));
        let txn = config.transactional_id.as_ref().map(|id| {
            Arc::new(TransactionManager::new(id.clone(), config.transaction_timeout, core.clone(), acc.clone(), identity.clone()))
        });
        let sender = Sender::new(
            core.clone(),
            acc.clone(),
            SenderConfig {
                acks: config.acks,
                idempotent: config.enable_idempotence,
                max_in_flight: config.max_in_flight,
                max_request_size: config.max_request_size,
                retries: config.retries,
                retry_backoff: config.client.retry_backoff,
                request_timeout: config.client.request_timeout,
                delivery_timeout: config.delivery_timeout,
                adaptive: config.partitioner_adaptive_partitioning,
                availability_timeout: config.partitioner_availability_timeout,
            },
            identity.clone(),
            txn.clone().map(|t| t as Arc<dyn TransactionHooks>),
        );
        let done = spawn_sender_thread(sender)?;
        Ok(Producer {
            inner: Arc::new(Inner { core, acc, cfg: config, identity, txn, sender_done: Mutex::new(Some(done)) }),
        })
    }

    fn txn(&self, call: &str) -> Result<&Arc<TransactionManager>> {
        self.inner.txn.as_ref().ok_or_else(|| {
            Error::InvalidTransactionState(format!("{call} needs a transactional producer: set ProducerConfig::transactional_id"))
        })
    }

    /// Registers the transactional id with its coordinator and gets the producer id and
    /// epoch (Java's `initTransactions`). A previous producer with the same id is fenced
    /// and its open transaction finished (aborted, or completed if it was committing).
    /// Call once, before the first transaction; after a timeout it may be called again.
    ///
    /// Errors: retriable (timeout: call again), fatal (`TRANSACTIONAL_ID_AUTHORIZATION_FAILED`),
    /// [`Error::InvalidTransactionState`] when already initialised or not transactional.
    pub async fn init_transactions(&self, timeout: Duration) -> Result<()> {
        self.txn("init_transactions")?.init_transactions(timeout).await
    }

    /// Starts a transaction (local only; Java's `beginTransaction`). Records sent from now
    /// on and offsets given to [`Producer::send_offsets_to_transaction`] belong to it until
    /// [`Producer::commit_transaction`] or [`Producer::abort_transaction`].
    /// [`Error::InvalidTransactionState`] unless the producer is ready (initialised and no
    /// transaction open).
    pub fn begin_transaction(&self) -> Result<()> {
        self.txn("begin_transaction")?.begin_transaction()
    }

    /// Adds a consumer's positions to the transaction (Java's `sendOffsetsToTransaction`):
    /// they become the group's committed offsets if and only if the transaction commits.
    /// `offsets` are the next offsets to consume; `group` comes from
    /// [`Consumer::group_metadata`](crate::consumer::Consumer::group_metadata), so the
    /// group coordinator can refuse offsets of a member whose generation is over (KIP-447).
    ///
    /// Errors: abortable ([`Error::is_abortable`]: the member was fenced by a rebalance,
    /// group authorization) — abort and go on; fatal (fenced producer); retriable (timeout:
    /// the call may be repeated).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<()> {
        self.txn("send_offsets_to_transaction")?.send_offsets_to_transaction(offsets, group, timeout).await
    }

    /// Commits the open transaction (Java's `commitTransaction`): sends every queued record,
    /// waits for each, then ends the transaction with its coordinator. Records and offsets
    /// become visible to `read_committed` consumers together.
    ///
    /// If any record of the transaction failed, nothing is committed and the error is
    /// abortable: call [`Producer::abort_transaction`]. On a timeout the outcome may be
    /// unknown; call `commit_transaction` again, which retries the same commit (it never
    /// turns into an abort of the same epoch). Fatal errors (fenced) end the producer.
    pub async fn commit_transaction(&self, timeout: Duration) -> Result<()> {
        self.txn("commit_transaction")?.commit_transaction(timeout).await
    }

    /// Aborts the open transaction (Java's `abortTransaction`): records not yet sent fail
    /// (their delivery futures resolve with an abortable error), records in flight are
    /// awaited, then the coordinator aborts the transaction; nothing of it becomes visible
    /// to `read_committed` consumers. Also the way out of an abortable error.
    ///
    /// After a commit that timed out (outcome unknown), the producer does not send an abort
    /// for that epoch: it re-initialises with a new epoch instead (KIP-360), and that
    /// transaction ends as the coordinator had decided (it may have committed).
    /// On a timeout, call it again.
    pub async fn abort_transaction(&self, timeout: Duration) -> Result<()> {
        self.txn("abort_transaction")?.abort_transaction(timeout).await
    }

    /// The transaction protocol version (1 or 2, KIP-890) the current or next transaction
    /// uses; `None` for a producer without `transactional_id`. A test hook of the unstable
    /// `test-hooks` feature, not part of the API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn transaction_protocol_version(&self) -> Option<u8> {
        self.txn_protocol()
    }

    /// The transaction protocol version, for the crate (see `transaction_protocol_version`).
    pub(crate) fn txn_protocol(&self) -> Option<u8> {
        self.inner.txn.as_ref().map(|t| if t.uses_v2() { 2 } else { 1 })
    }

    /// Queues a record and returns the future of its delivery.
    ///
    /// Waits only while the buffer is full or the topic's metadata is unknown (both up to
    /// `max_block`). Fails at once, touching no other record, for an invalid topic name, an
    /// invalid explicit partition, a record larger than `max_request_size`, or a closed or
    /// fenced producer; a topic that does not exist fails after `max_block`.
    ///
    /// A transactional producer (`transactional_id`) sends only between
    /// [`Producer::begin_transaction`] and the commit or abort
    /// ([`Error::InvalidTransactionState`] otherwise); after an abortable error `send`
    /// returns it until the transaction is aborted, and a record whose batch fails resolves
    /// with an [`Error::TransactionAbortable`] (or a fatal error when fenced).
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &*self.inner;
        if let Some(e) = inner.acc.fatal() {
            return Err(e.clone());
        }
        if inner.acc.is_closing() {
            return Err(Error::Closed);
        }
        let size = record.size_upper_bound();
        if size > inner.cfg.max_request_size {
            return Err(Error::InvalidArgument(format!(
                "the record is {size} bytes when serialized, larger than max_request_size ({})",
                inner.cfg.max_request_size
            )));
        }
        let topic = self.topic_queues(&record.topic)?;
        let view = self.topic_view(&topic).await?;
        let partition = self.choose_partition(&record, &topic, &view)?;
        if let Some(txn) = &inner.txn {
            txn.on_send(&record.topic, partition)?;
        }
        let memory = inner.acc.reserve(size, inner.cfg.max_block).await?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let (fut, closed) = inner.acc.append(
            &topic,
            partition,
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            memory,
        )?;
        if record.partition.is_none() && (record.key.is_none() || inner.cfg.partitioner_ignore_keys) {
            topic.sticky.on_append(partition, size, closed, inner.cfg.batch_size, view.partition_count, &view.available);
        }
        Ok(fut)
    }

    /// Sends every record queued so far without waiting for linger, and waits until each
    /// has succeeded or failed.
    pub async fn flush(&self) -> Result<()> {
        self.inner.acc.flush().await;
        match self.inner.acc.fatal() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Stops taking records, sends what is queued, and waits up to `timeout` for it; what is
    /// still unsent then fails with [`Error::Closed`]. Other clones of this producer are
    /// closed too.
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        let inner = &*self.inner;
        inner.acc.begin_close();
        let drained = tokio::time::timeout(timeout, inner.acc.flush()).await.is_ok();
        if !drained {
            inner.acc.set_fatal(Error::Closed);
            inner.acc.wake.notify_one();
        }
        let done = inner.sender_done.lock().unwrap().take();
        if let Some(done) = done {
            let _ = tokio::time::timeout(Duration::from_secs(1).max(timeout / 10), done).await;
        }
        if drained {
            Ok(())
        } else {
            Err(Error::Timeout(format!("close did not finish sending within {timeout:?}")))
        }
    }

    /// The partitions of a topic (waiting up to `max_block` for its metadata).
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>> {
        validate_topic_name(topic)?;
        self.wait_for_topic(topic).await?;
        Ok(self.inner.core.metadata.snapshot().topics.get(topic).map(|t| t.partitions.clone()).unwrap_or_default())
    }

    /// The producer id and epoch in use (idempotence), if any.
    pub fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        self.inner.identity.lock().unwrap().map(|i| (i.producer_id, i.epoch))
    }

    fn topic_queues(&self, name: &str) -> Result<Arc<TopicQueues>> {
        validate_topic_name(name)?;
        Ok(self.inner.acc.topic(name))
    }

    /// The topic's partition count and available partitions, cached per metadata snapshot
    /// (computed once per refresh, not per record).
    async fn topic_view(&self, topic: &TopicQueues) -> Result<Arc<TopicView>> {
        let compute = |c: &crate::metadata::Cluster| {
            c.topics.get(&*topic.name).filter(|t| !t.partitions.is_empty()).map(|t| {
                Arc::new(TopicView {
                    partition_count: t.partitions.len() as i32,
                    available: t.partitions.iter().filter(|p| p.leader.is_some()).map(|p| p.partition).collect(),
                })
            })
        };
        let cached = |topic: &TopicQueues, snap: Arc<crate::metadata::Cluster>| -> Option<Arc<TopicView>> {
            let mut slot = topic.view.lock().unwrap();
            if let Some((c, v)) = &*slot {
                if Arc::ptr_eq(c, &snap) {
                    return Some(v.clone());
                }
            }
            let v = compute(&snap)?;
            *slot = Some((snap, v.clone()));
            Some(v)
        };
        if let Some(v) = cached(topic, self.inner.core.metadata.snapshot()) {
            return Ok(v);
        }
        self.wait_for_topic(&topic.name).await?;
        cached(topic, self.inner.core.metadata.snapshot()).ok_or_else(|| {
            Error::broker(ErrorCode::UnknownTopicOrPartition, "Metadata", None, Some(topic.name.to_string()), None)
        })
    }

    /// Refreshes metadata until `topic` is known, up to `max_block`.
    async fn wait_for_topic(&self, topic: &str) -> Result<()> {
        let inner = &*self.inner;
        let deadline = tokio::time::Instant::now() + inner.cfg.max_block;
        let names = [topic.to_owned()];
        loop {
            let c = match inner.core.metadata.refresh_topics(&names).await {
                Ok(c) => c,
                Err(e) if e.is_retriable() => inner.core.metadata.snapshot(),
                Err(e) => return Err(e),
            };
            if c.topics.get(topic).is_some_and(|t| !t.partitions.is_empty()) {
                return Ok(());
            }
            if let Some((code, _)) = c.topic_errors.get(topic) {
                if !matches!(code, ErrorCode::UnknownTopicOrPartition | ErrorCode::LeaderNotAvailable) {
                    return Err(Error::broker(*code, "Metadata", None, Some(topic.to_owned()), None));
                }
            }
            if tokio::time::Instant::now() + inner.core.config.retry_backoff >= deadline {
                return Err(Error::Timeout(format!(
                    "topic {topic} not present in metadata after {:?} (max_block); does it exist?",
                    inner.cfg.max_block
                )));
            }
            tokio::time::sleep(inner.core.config.retry_backoff).await;
        }
    }

    fn choose_partition(&self, record: &ProducerRecord, topic: &TopicQueues, view: &TopicView) -> Result<i32> {
        let n = view.partition_count;
        let check = |p: i32, who: &str| {
            if p < 0 || p >= n {
                Err(Error::InvalidArgument(format!(
                    "{who} partition {p} is not valid for topic {} with {n} partitions",
                    record.topic
                )))
            } else {
                Ok(p)
            }
        };
        if let Some(p) = record.partition {
            return check(p, "explicit");
        }
        if let Some(custom) = &self.inner.cfg.partitioner {
            if let Some(p) = custom.partition(&record.topic, record.key.as_deref(), record.value.as_deref(), n) {
                return check(p, "custom partitioner's");
            }
        }
        match &record.key {
            Some(k) if !self.inner.cfg.partitioner_ignore_keys => Ok(partition_for_key(k, n)),
            _ => Ok(topic.sticky.partition(n, &view.available)),
        }
    }
}

/// Runs the Sender on a thread of its own with a single-threaded runtime, as librdkafka
/// runs a thread per broker: the Sender and the connection tasks it creates (produce
/// connections, `ConnKind::Produce`) then wake each other on one thread. On a multi-thread
/// runtime, those wake-ups cost futex calls and thread switches per request and were the
/// largest CPU cost of producing (see BENCHMARKS.md). The application's tasks only cross
/// over when a batch is ready and when a delivery completes.
fn spawn_sender_thread(sender: Sender) -> Result<tokio::sync::oneshot::Receiver<()>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Config(format!("cannot start the producer's runtime: {e}")))?;
    std::thread::Builder::new()
        .name("ferrokafka-producer".into())
        .spawn(move || {
            runtime.block_on(sender.run());
            // Dropping the runtime ends the produce connections' tasks.
            drop(runtime);
            let _ = tx.send(());
        })
        .map_err(|e| Error::Config(format!("cannot start the producer's thread: {e}")))?;
    Ok(rx)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
