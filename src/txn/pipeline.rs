//! The exactly-once consume-transform-produce loop (Java's "read-process-write" pattern
//! with KIP-447 group metadata), as one helper.
//!
//! ```no_run
//! # async fn demo() -> ferrokafka::Result<()> {
//! use ferrokafka::consumer::{Consumer, ConsumerConfig, IsolationLevel, OffsetReset};
//! use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
//! use ferrokafka::txn::ExactlyOncePipeline;
//!
//! let consumer = Consumer::new(
//!     ConsumerConfig::new("127.0.0.1:9092")
//!         .group_id("copier")
//!         .isolation_level(IsolationLevel::ReadCommitted)
//!         .enable_auto_commit(false)
//!         .auto_offset_reset(OffsetReset::Earliest),
//! ).await?;
//! consumer.subscribe(["input"]).await?;
//! let producer = Producer::new(ProducerConfig::new("127.0.0.1:9092").transactional_id("copier-1")).await?;
//! let pipeline = ExactlyOncePipeline::new(consumer, producer).await?;
//! loop {
//!     // One transaction per polled batch: outputs and input offsets commit together.
//!     pipeline
//!         .run_once(|r| {
//!             vec![ProducerRecord {
//!                 topic: "output".into(),
//!                 partition: Some(r.partition),
//!                 key: r.key.clone(),
//!                 value: r.value.clone(),
//!                 ..Default::default()
//!             }]
//!         })
//!         .await?;
//! }
//! # }
//! ```
//!
//! Per batch: `poll` (rebalances and their callbacks happen here, never inside a
//! transaction) → `begin_transaction` → the transform's records are sent →
//! `send_offsets_to_transaction` with the positions after the batch and the consumer's
//! group metadata of that moment → `commit_transaction`.
//!
//! The pipeline remembers an unfinished transaction. While one is open it never polls: the
//! next [`ExactlyOncePipeline::run_once`] first finishes it (sends the offsets again,
//! retries the commit) or aborts it and rewinds every partition of its batch to the
//! batch's first offset — the first offset not yet committed, since everything before it
//! was committed by earlier transactions and only one batch is ever uncommitted. What the
//! caller does after each error class of `run_once`:
//!
//! - **retriable** ([`Error::is_retriable`]: a timeout, a coordinator that is loading or
//!   moving): call `run_once` again; it resumes the open transaction where it stopped (the
//!   offsets, or a commit whose outcome is unknown — never aborted, so a commit that did
//!   happen is never processed twice).
//! - **abortable**: never returned; the transaction is aborted, the input rewound, and
//!   `run_once` returns `Ok` with `committed: false`. The batch comes back on a later call
//!   (or, after a rebalance, to the partition's new owner).
//! - **fatal** ([`Error::is_fatal`]: fenced by another instance with the same
//!   `transactional_id`, or a transaction whose end cannot be known): drop the pipeline and
//!   both clients and build new ones; `init_transactions` of the new producer finishes the
//!   old transaction and the new consumer starts from the group's committed offsets.
//! - **other** (a poll error such as a corrupt batch, or an invalid record from the
//!   transform): no transaction is left open (one that was, is aborted and its input
//!   rewound); fix the cause (seek past a corrupt batch, fix the transform) and call again.
//!
//! Rebuilding after every error (dropping or closing the pipeline) is also safe: the
//! group's committed offsets and the new producer's `init_transactions` decide.
//!
//! [`Error::is_retriable`]: crate::Error::is_retriable
//! [`Error::is_fatal`]: crate::Error::is_fatal

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::{debug, warn};

use crate::consumer::{Consumer, ConsumerGroupMetadata, ConsumerRecord, IsolationLevel, OffsetAndMetadata, TopicPartition};
use crate::error::{Error, Result};
use crate::producer::{DeliveryFuture, Producer, ProducerRecord};

/// Settings of an [`ExactlyOncePipeline`].
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// How long one `run_once` polls for input. Default 1 s.
    pub poll_timeout: Duration,
    /// The timeout of each transactional call (init, send offsets, commit, abort).
    /// Default 60 s.
    pub call_timeout: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { poll_timeout: Duration::from_secs(1), call_timeout: Duration::from_secs(60) }
    }
}

/// What one [`ExactlyOncePipeline::run_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// Input records consumed (and committed, when `committed`).
    pub consumed: usize,
    /// Output records written in the transaction.
    pub produced: usize,
    /// Whether the transaction committed; `false` with `consumed > 0` means it was aborted
    /// and the input rewound.
    pub committed: bool,
}

/// Consume → transform → produce → send offsets → commit, one transaction per polled
/// batch, with abort-and-rewind on abortable errors. See the [module docs](crate::txn).
pub struct ExactlyOncePipeline {
    consumer: Consumer,
    producer: Producer,
    cfg: PipelineConfig,
    /// The transaction not yet finished (at most one), held across `run_once` calls; the
    /// lock also makes concurrent `run_once` calls take turns.
    open: tokio::sync::Mutex<Option<OpenTxn>>,
}

/// Where the open transaction stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Records are being sent: an interrupted send cannot be resumed, so the
    /// transaction is aborted.
    Sending,
    /// Every record was queued; the offsets are sent next (again, after a retriable error).
    Offsets,
    /// The offsets are in the transaction; the commit is next (again, after a retriable
    /// error: its outcome may be unknown, so it is never aborted).
    Commit,
    /// An abort was started and must be completed before anything else.
    Abort,
}

/// The transaction of one polled batch.
struct OpenTxn {
    stage: Stage,
    records: usize,
    produced: usize,
    /// The rewind point of each partition of the batch: its first offset.
    first: BTreeMap<TopicPartition, i64>,
    /// The offsets to commit: the next record to read, with its leader epoch.
    next: BTreeMap<TopicPartition, OffsetAndMetadata>,
    /// The group metadata at the poll (KIP-447: the generation the records were read in).
    group: ConsumerGroupMetadata,
    deliveries: Vec<DeliveryFuture>,
}

impl std::fmt::Debug for ExactlyOncePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactlyOncePipeline").field("cfg", &self.cfg).finish()
    }
}

impl ExactlyOncePipeline {
    /// Checks the two clients and initialises the producer's transactions
    /// (`init_transactions`, which also fences an older instance with the same
    /// `transactional_id` and aborts its open transaction). The consumer must have a
    /// `group_id`, `isolation_level = ReadCommitted` and auto-commit off, and should be
    /// subscribed; the producer must have a `transactional_id`.
    pub async fn new(consumer: Consumer, producer: Producer) -> Result<ExactlyOncePipeline> {
        ExactlyOncePipeline::with_config(consumer, producer, PipelineConfig::default()).await
    }

    /// As [`ExactlyOncePipeline::new`], with explicit settings.
    pub async fn with_config(consumer: Consumer, producer: Producer, cfg: PipelineConfig) -> Result<ExactlyOncePipeline> {
        let c = consumer.config();
        if c.group_id.is_none() {
            return Err(Error::Config("exactly-once pipeline: the consumer needs a group_id".into()));
        }
        if c.isolation_level != IsolationLevel::ReadCommitted {
            return Err(Error::Config(
                "exactly-once pipeline: the consumer must read with isolation_level ReadCommitted".into(),
            ));
        }
        if c.enable_auto_commit {
            return Err(Error::Config(
                "exactly-once pipeline: the consumer must have enable_auto_commit false (offsets are committed in the transactions)".into(),
            ));
        }
        if producer.txn_protocol().is_none() {
            return Err(Error::Config("exactly-once pipeline: the producer needs a transactional_id".into()));
        }
        producer.init_transactions(cfg.call_timeout).await?;
        Ok(ExactlyOncePipeline { consumer, producer, cfg, open: tokio::sync::Mutex::new(None) })
    }

    /// The consumer (to subscribe, set a listener, inspect the assignment).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// The transactional producer.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Polls one batch and processes it in one transaction: every record goes through
    /// `transform`, whose outputs are sent; then the batch's offsets and the outputs
    /// commit together. Returns what happened; an aborted batch (abortable error) is not
    /// an error: the input is rewound and comes back on a later call.
    ///
    /// When an earlier call left its transaction open (it returned a retriable error, or
    /// its future was dropped), this call polls nothing: it finishes that transaction
    /// (offsets, commit) or aborts and rewinds it, and returns that batch's outcome. See
    /// the [module docs](crate::txn) for what to do after each kind of error.
    pub async fn run_once<F>(&self, mut transform: F) -> Result<BatchOutcome>
    where
        F: FnMut(&ConsumerRecord) -> Vec<ProducerRecord>,
    {
        let mut open = self.open.lock().await;
        if open.is_some() {
            return self.finish(&mut open).await;
        }
        let records = self.consumer.poll(self.cfg.poll_timeout).await?;
        if records.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let group = self.consumer.group_metadata().expect("checked: the consumer has a group id");
        let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut next: BTreeMap<TopicPartition, OffsetAndMetadata> = BTreeMap::new();
        for r in &records {
            let tp = TopicPartition::new(r.topic.to_string(), r.partition);
            first.entry(tp.clone()).or_insert(r.offset);
            next.insert(tp, OffsetAndMetadata { offset: r.offset + 1, leader_epoch: r.leader_epoch, metadata: String::new() });
        }
        if let Err(e) = self.producer.begin_transaction() {
            // Nothing was sent: give the batch back and report why.
            self.rewind(&first);
            return Err(e);
        }
        // Remembered before the first send: whatever happens from here on, the next call
        // knows a transaction is open and which input it holds.
        let txn = open.insert(OpenTxn {
            stage: Stage::Sending,
            records: records.len(),
            produced: 0,
            first,
            next,
            group,
            deliveries: Vec::new(),
        });
        for r in &records {
            for out in transform(r) {
                match self.producer.send(out).await {
                    Ok(d) => txn.deliveries.push(d),
                    Err(e) => {
                        // A record that could not be queued cannot be part of this
                        // transaction: abort it, whatever the error.
                        txn.stage = Stage::Abort;
                        return self.abort(&mut open, Some(e)).await;
                    }
                }
            }
        }
        txn.produced = txn.deliveries.len();
        txn.stage = Stage::Offsets;
        self.finish(&mut open).await
    }

    /// Takes the open transaction on from its stage to a commit, or aborts it.
    async fn finish(&self, open: &mut Option<OpenTxn>) -> Result<BatchOutcome> {
        let t = self.cfg.call_timeout;
        let txn = open.as_mut().expect("an open transaction");
        if txn.stage == Stage::Sending {
            // An earlier call's future was dropped while sending.
            txn.stage = Stage::Abort;
        }
        if txn.stage == Stage::Offsets {
            match self.producer.send_offsets_to_transaction(&txn.next, &txn.group, t).await {
                Ok(()) => txn.stage = Stage::Commit,
                Err(e) => return self.after_error(open, e).await,
            }
        }
        if txn.stage == Stage::Commit {
            // commit_transaction flushes and waits for every record; a failed one makes the
            // commit fail with an abortable error.
            match self.producer.commit_transaction(t).await {
                Ok(()) => {
                    let txn = open.take().expect("an open transaction");
                    let produced = txn.produced;
                    for d in txn.deliveries {
                        // Committed: every record was written (a failed one would have
                        // failed the commit).
                        if let Err(e) = d.await {
                            warn!(error = %e, "a record of a committed transaction reports a failure");
                        }
                    }
                    return Ok(BatchOutcome { consumed: txn.records, produced, committed: true });
                }
                Err(e) => return self.after_error(open, e).await,
            }
        }
        self.abort(open, None).await
    }

    /// An error of the offsets or the commit: retriable ones keep the transaction for the
    /// next call; abortable and other non-fatal ones abort it; fatal ones are returned
    /// (the producer refuses everything from now on).
    async fn after_error(&self, open: &mut Option<OpenTxn>, e: Error) -> Result<BatchOutcome> {
        if e.is_fatal() {
            return Err(e);
        }
        if e.is_retriable() {
            debug!(error = %e, "transaction left open; the next run_once resumes it");
            return Err(e);
        }
        open.as_mut().expect("an open transaction").stage = Stage::Abort;
        self.abort(open, (!e.is_abortable()).then_some(e)).await
    }

    /// Aborts the open transaction and rewinds its input. `cause`: an error to return once
    /// the abort is done (abortable causes are not returned: the outcome says aborted).
    async fn abort(&self, open: &mut Option<OpenTxn>, cause: Option<Error>) -> Result<BatchOutcome> {
        let txn = open.as_ref().expect("an open transaction");
        warn!(cause = ?cause.as_ref().map(|e| e.to_string()), records = txn.records, "aborting the transaction; the batch will be processed again");
        // Retriable: the stage stays Abort and the next call tries again. Fatal: returned.
        self.producer.abort_transaction(self.cfg.call_timeout).await?;
        let txn = open.take().expect("an open transaction");
        self.rewind(&txn.first);
        match cause {
            Some(e) if !e.is_abortable() => Err(e),
            _ => Ok(BatchOutcome { consumed: txn.records, produced: 0, committed: false }),
        }
    }

    /// Moves every still-assigned partition of an aborted batch back to its first offset
    /// (everything before it was committed by earlier transactions). Partitions that were
    /// revoked meanwhile start at the group's committed offset with their next owner.
    fn rewind(&self, first: &BTreeMap<TopicPartition, i64>) {
        let assigned = self.consumer.assignment();
        for (tp, offset) in first {
            if assigned.contains(tp) {
                if let Err(e) = self.consumer.seek(tp, *offset) {
                    debug!(error = %e, %tp, "rewind skipped");
                }
            }
        }
    }

    /// Runs [`run_once`](Self::run_once) until `stop` resolves (checked between batches)
    /// or an error is returned.
    pub async fn run<F, S>(&self, mut transform: F, stop: S) -> Result<()>
    where
        F: FnMut(&ConsumerRecord) -> Vec<ProducerRecord>,
        S: std::future::Future<Output = ()>,
    {
        // `stop` is only checked between batches: a transaction is never cut in half.
        let mut stop = std::pin::pin!(stop);
        loop {
            if futures::poll!(stop.as_mut()).is_ready() {
                return Ok(());
            }
            self.run_once(&mut transform).await?;
        }
    }

    /// Closes both clients: the consumer leaves its group; an open transaction is aborted.
    pub async fn close(self) -> Result<()> {
        let r = self.consumer.close().await;
        self.producer.close(self.cfg.call_timeout).await?;
        r
    }
}
