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
//! group metadata of that moment → `commit_transaction`. On an abortable error (a failed
//! record, the group refusing the offsets because the generation moved on) the transaction
//! is aborted and the consumer rewound to the batch's first offsets (what the group has
//! committed), so the batch is processed again — by this member or, after a rebalance, by
//! the partition's new owner. A fatal error (another instance with the same
//! `transactional_id` fenced this one) ends the pipeline: [`ExactlyOncePipeline::run_once`]
//! returns it and every later call fails.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::{debug, warn};

use crate::consumer::{Consumer, ConsumerRecord, IsolationLevel, OffsetAndMetadata, TopicPartition};
use crate::error::{Error, Result};
use crate::producer::{Producer, ProducerRecord};

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
/// batch, with abort-and-rewind on abortable errors. See the [module docs](self).
pub struct ExactlyOncePipeline {
    consumer: Consumer,
    producer: Producer,
    cfg: PipelineConfig,
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
        if producer.transaction_protocol_version().is_none() {
            return Err(Error::Config("exactly-once pipeline: the producer needs a transactional_id".into()));
        }
        producer.init_transactions(cfg.call_timeout).await?;
        Ok(ExactlyOncePipeline { consumer, producer, cfg })
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
    /// an error: the input is rewound and comes back on a later call. Fatal and other
    /// non-abortable errors are returned (after a retriable one, e.g. a commit whose
    /// outcome is unknown, calling `run_once` again retries the commit first).
    pub async fn run_once<F>(&self, mut transform: F) -> Result<BatchOutcome>
    where
        F: FnMut(&ConsumerRecord) -> Vec<ProducerRecord>,
    {
        let records = self.consumer.poll(self.cfg.poll_timeout).await?;
        if records.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let group = self.consumer.group_metadata().expect("checked: the consumer has a group id");
        // Where each partition of the batch starts (the rewind point) and ends (the offsets
        // to commit: the next record to read, with its leader epoch).
        let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut next: BTreeMap<TopicPartition, OffsetAndMetadata> = BTreeMap::new();
        for r in &records {
            let tp = TopicPartition::new(r.topic.to_string(), r.partition);
            first.entry(tp.clone()).or_insert(r.offset);
            next.insert(tp, OffsetAndMetadata { offset: r.offset + 1, leader_epoch: r.leader_epoch, metadata: String::new() });
        }
        let t = self.cfg.call_timeout;
        let attempt = async {
            self.producer.begin_transaction()?;
            let mut deliveries = Vec::new();
            for r in &records {
                for out in transform(r) {
                    deliveries.push(self.producer.send(out).await?);
                }
            }
            let produced = deliveries.len();
            self.producer.send_offsets_to_transaction(&next, &group, t).await?;
            // commit_transaction flushes and waits for every record; a failed one makes the
            // commit fail with an abortable error.
            self.producer.commit_transaction(t).await?;
            for d in deliveries {
                d.await?;
            }
            Ok::<usize, Error>(produced)
        };
        match attempt.await {
            Ok(produced) => Ok(BatchOutcome { consumed: records.len(), produced, committed: true }),
            Err(e) if e.is_abortable() => {
                warn!(error = %e, records = records.len(), "aborting the transaction; the batch will be processed again");
                self.producer.abort_transaction(t).await?;
                self.rewind(&first);
                Ok(BatchOutcome { consumed: records.len(), produced: 0, committed: false })
            }
            Err(e) => Err(e),
        }
    }

    /// Moves every still-assigned partition of an aborted batch back to its first offset
    /// (everything before it was committed by earlier transactions).
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
