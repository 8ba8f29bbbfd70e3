//! The RecordAccumulator: per-partition queues of ProducerBatches between `send` and the
//! Sender.
//!
//! `send` appends to the open batch of the record's partition (under that partition's
//! mutex); a batch that fills is closed and encoded (compressed) right there, by the
//! sending task, and queued as ready. The Sender closes batches whose linger expired,
//! drains ready batches into produce requests, and puts retried batches back at the front
//! in sequence order. Buffer memory is a semaphore of bytes: `send` takes the record's size
//! and the batch gives it back when it completes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::producer::partitioner::StickyPartition;
use crate::record::{BatchWriter, Compression, EncodedBatch, Header};

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic (shared, not copied per record).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 when unknown (acks=0, or a retry found the batch already
    /// written by an earlier attempt whose answer was lost).
    pub offset: i64,
    /// The record's timestamp: the broker's append time for `LogAppendTime` topics, else
    /// the record's create time.
    pub timestamp: i64,
}

/// How a batch ended.
#[derive(Clone)]
enum Outcome {
    Written { base_offset: i64, log_append_time: i64 },
    Failed(Error),
    /// The batch was too large for the broker and was split; records `start..` of this
    /// batch are records `0..` of the child.
    Split(Vec<(u32, Arc<BatchCompletion>)>),
}

/// The completion cell shared by a batch and the delivery futures of its records.
pub(crate) struct BatchCompletion {
    outcome: OnceLock<Outcome>,
    /// The wakers of the futures waiting on this batch, one slot per future: a future
    /// remembers its slot, so polling it again costs O(1) however many records the batch
    /// holds (no scan of the list).
    wakers: Mutex<Vec<Option<Waker>>>,
    topic: Arc<str>,
    partition: i32,
}

impl BatchCompletion {
    fn new(topic: Arc<str>, partition: i32) -> Arc<BatchCompletion> {
        Arc::new(BatchCompletion { outcome: OnceLock::new(), wakers: Mutex::new(Vec::new()), topic, partition })
    }

    fn complete(&self, outcome: Outcome) {
        if self.outcome.set(outcome).is_ok() {
            for w in std::mem::take(&mut *self.wakers.lock().unwrap()).into_iter().flatten() {
                w.wake();
            }
        }
    }

    /// The outcome, or `None` after registering `waker` in the caller's slot (`slot`: the
    /// completion it belongs to, by address, and its index; a fresh slot on first use).
    fn outcome_or_register(&self, slot: &mut WakerSlot, waker: &Waker) -> Option<&Outcome> {
        if let Some(o) = self.outcome.get() {
            return Some(o);
        }
        let mut w = self.wakers.lock().unwrap();
        // Re-check under the lock: `complete` takes the lock after setting.
        if let Some(o) = self.outcome.get() {
            return Some(o);
        }
        let me = self as *const BatchCompletion as usize;
        match slot.filter(|(c, _)| *c == me).and_then(|(_, i)| w.get_mut(i)) {
            Some(Some(old)) if old.will_wake(waker) => {}
            Some(s) => *s = Some(waker.clone()),
            None => {
                w.push(Some(waker.clone()));
                *slot = Some((me, w.len() - 1));
            }
        }
        None
    }

    /// The metadata of record `index`, or `Pending` (its waker registered in `slot`).
    fn poll_record(&self, index: u32, timestamp: i64, slot: &mut WakerSlot, cx: &mut Context<'_>) -> Poll<Result<RecordMetadata>> {
        let Some(outcome) = self.outcome_or_register(slot, cx.waker()) else {
            return Poll::Pending;
        };
        Poll::Ready(match outcome {
            Outcome::Written { base_offset, log_append_time } => Ok(RecordMetadata {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: if *base_offset >= 0 { base_offset + index as i64 } else { -1 },
                timestamp: if *log_append_time >= 0 { *log_append_time } else { timestamp },
            }),
            Outcome::Failed(e) => Err(e.clone()),
            Outcome::Split(children) => {
                let (start, child) = children
                    .iter()
                    .rev()
                    .find(|(start, _)| *start <= index)
                    .expect("split children cover every record");
                return child.poll_record(index - start, timestamp, slot, cx);
            }
        })
    }
}

/// Resolves to where a record landed, or why it failed.
///
/// Dropping it does not cancel the record: it is still sent, and its outcome is simply
/// not observed.
#[must_use = "the record is sent either way; await this to learn its offset or error"]
pub struct DeliveryFuture {
    completion: Arc<BatchCompletion>,
    index: u32,
    timestamp: i64,
    slot: WakerSlot,
}

/// Where a pending future's waker is registered: (the completion's address, slot index).
/// The completion stays alive as long as the future (it holds the `Arc`, and a split
/// parent holds its children).
type WakerSlot = Option<(usize, usize)>;

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.completion.topic)
            .field("partition", &self.completion.partition)
            .field("index", &self.index)
            .finish()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.completion.poll_record(this.index, this.timestamp, &mut this.slot, cx)
    }
}

/// A closed, encoded batch of one partition, waiting to be sent or in flight.
pub(crate) struct ProducerBatch {
    pub topic: Arc<str>,
    pub partition: i32,
    pub encoded: EncodedBatch,
    pub created: Instant,
    /// Times sent so far.
    pub attempts: u32,
    /// No resend before this instant (retry backoff).
    pub retry_at: Option<Instant>,
    /// Fixed at the first drain (idempotence); kept across retries.
    pub base_sequence: Option<i32>,
    /// Buffer-memory bytes this batch holds.
    memory: u32,
    completion: Arc<BatchCompletion>,
    id: u64,
}

impl ProducerBatch {
    pub(crate) fn record_count(&self) -> i32 {
        self.encoded.record_count()
    }
}

/// A batch still taking records.
struct OpenBatch {
    writer: BatchWriter,
    created: Instant,
    memory: u32,
    completion: Arc<BatchCompletion>,
    id: u64,
}

/// The queues of one partition.
pub(crate) struct PartitionQueue {
    pub partition: i32,
    open: Option<OpenBatch>,
    /// Closed batches, oldest first; retries go back at the front in sequence order.
    pub ready: VecDeque<ProducerBatch>,
    /// Batches of this partition in flight, and the broker they went to.
    pub in_flight: usize,
    pub in_flight_broker: Option<i32>,
    /// The sequence the next new batch gets (idempotence).
    pub next_sequence: i32,
    /// The last sequence acknowledged by the broker, if any in this epoch.
    pub last_acked: Option<i32>,
    /// Uncompressed size of this partition's last closed batch: the next batch's buffer
    /// starts that large, so a busy partition allocates once per batch and a quiet one
    /// does not hold `batch_size` bytes per open batch.
    last_batch_bytes: usize,
}

impl PartitionQueue {
    fn new(partition: i32) -> PartitionQueue {
        PartitionQueue {
            partition,
            open: None,
            ready: VecDeque::new(),
            in_flight: 0,
            in_flight_broker: None,
            next_sequence: 0,
            last_acked: None,
            last_batch_bytes: 0,
        }
    }

    /// Puts a batch that will be retried back among the ready ones, before every batch with
    /// a higher (or no) sequence, so retries leave in their original order.
    pub(crate) fn requeue(&mut self, batch: ProducerBatch) {
        let pos = match batch.base_sequence {
            Some(seq) => self
                .ready
                .iter()
                .position(|b| b.base_sequence.is_none_or(|s| seq_before(seq, s)))
                .unwrap_or(self.ready.len()),
            // Without a sequence, by creation order.
            None => self.ready.iter().position(|b| b.id > batch.id).unwrap_or(self.ready.len()),
        };
        self.ready.insert(pos, batch);
    }

    /// Batches queued here and not in flight, the open one included (Java's deque size):
    /// what adaptive partitioning weighs.
    pub(crate) fn queue_len(&self) -> usize {
        self.ready.len() + usize::from(self.open.is_some())
    }
}

/// Whether sequence `a` comes before `b`: sequences live in 0..=i32::MAX and wrap to 0,
/// so compare their distance modulo 2^31.
pub(crate) fn seq_before(a: i32, b: i32) -> bool {
    let d = (b as i64 - a as i64).rem_euclid(1 << 31);
    d > 0 && d < (1 << 30)
}

/// The partitions of one topic.
pub(crate) struct TopicQueues {
    pub name: Arc<str>,
    pub partitions: RwLock<Vec<Arc<Mutex<PartitionQueue>>>>,
    pub sticky: StickyPartition,
    /// What `send` needs from the metadata, cached per metadata snapshot.
    pub view: Mutex<Option<(Arc<crate::metadata::Cluster>, Arc<TopicView>)>>,
    /// Estimated compressed/uncompressed size ratio of this topic's batches (as the Java
    /// client's CompressionRatioEstimator): `batch_size` limits the estimated compressed
    /// size, so well-compressing data makes batches of more records. f32 bits; starts at 1.
    ratio: std::sync::atomic::AtomicU32,
}

/// Java's steps: the estimate improves slowly and deteriorates fast.
const RATIO_IMPROVING_STEP: f32 = 0.005;
const RATIO_DETERIORATE_STEP: f32 = 0.05;
/// Java's safety factor applied to the estimated compressed size.
const RATIO_ESTIMATION_FACTOR: f32 = 1.05;

impl TopicQueues {
    fn ratio(&self) -> f32 {
        f32::from_bits(self.ratio.load(Ordering::Relaxed))
    }

    fn observe_ratio(&self, observed: f32) {
        let current = self.ratio();
        let next = if observed > current {
            (current + RATIO_DETERIORATE_STEP).max(observed)
        } else if observed < current {
            (current - RATIO_IMPROVING_STEP).max(observed)
        } else {
            current
        };
        self.ratio.store(next.to_bits(), Ordering::Relaxed);
    }
}

/// The topic facts `send` needs: partition count and partitions that have a leader.
pub(crate) struct TopicView {
    pub partition_count: i32,
    pub available: Vec<i32>,
}

impl TopicQueues {
    pub(crate) fn partition(&self, p: i32) -> Arc<Mutex<PartitionQueue>> {
        {
            let parts = self.partitions.read().unwrap();
            if let Some(q) = parts.get(p as usize) {
                return q.clone();
            }
        }
        let mut parts = self.partitions.write().unwrap();
        while parts.len() <= p as usize {
            let n = parts.len() as i32;
            parts.push(Arc::new(Mutex::new(PartitionQueue::new(n))));
        }
        parts[p as usize].clone()
    }
}

/// Settings the accumulator needs.
pub(crate) struct AccumulatorConfig {
    pub batch_size: usize,
    /// The cap on a compressed batch's uncompressed size (`max_request_size`), however well
    /// the data compresses.
    pub max_uncompressed: usize,
    pub linger: Duration,
    pub compression: Compression,
    /// The levels of `compression` (gzip, zstd).
    pub levels: crate::record::compression::Levels,
    pub buffer_memory: usize,
}

/// The record accumulator shared by `send` and the Sender.
pub(crate) struct RecordAccumulator {
    pub cfg: AccumulatorConfig,
    topics: RwLock<HashMap<String, Arc<TopicQueues>>>,
    memory: Arc<Semaphore>,
    /// Wakes the Sender: a batch filled, a new batch started (linger timer), flush, close.
    pub wake: Notify,
    /// Every batch not yet completed, by id (for flush).
    incomplete: Mutex<BTreeMap<u64, Arc<BatchCompletion>>>,
    next_id: AtomicU64,
    /// Flush calls in progress: while non-zero, linger is ignored.
    flushing: AtomicUsize,
    /// Set by close: no more sends; linger is ignored.
    closing: AtomicBool,
    /// A fatal error (fenced producer): every send fails with it.
    fatal: OnceLock<Error>,
}

impl RecordAccumulator {
    pub(crate) fn new(cfg: AccumulatorConfig) -> RecordAccumulator {
        let permits = cfg.buffer_memory.min(Semaphore::MAX_PERMITS);
        RecordAccumulator {
            cfg,
            topics: RwLock::new(HashMap::new()),
            memory: Arc::new(Semaphore::new(permits)),
            wake: Notify::new(),
            incomplete: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            fatal: OnceLock::new(),
        }
    }

    /// The queues of a topic, made on first use.
    pub(crate) fn topic(&self, name: &str) -> Arc<TopicQueues> {
        if let Some(t) = self.topics.read().unwrap().get(name) {
            return t.clone();
        }
        self.topics
            .write()
            .unwrap()
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(TopicQueues {
                    name: Arc::from(name),
                    partitions: RwLock::new(Vec::new()),
                    sticky: StickyPartition::default(),
                    view: Mutex::new(None),
                    ratio: std::sync::atomic::AtomicU32::new(1.0f32.to_bits()),
                })
            })
            .clone()
    }

    /// Every topic with queues (the Sender's view).
    pub(crate) fn all_topics(&self) -> Vec<Arc<TopicQueues>> {
        self.topics.read().unwrap().values().cloned().collect()
    }

    /// Waits (up to `max_block`) for `bytes` of buffer memory.
    pub(crate) async fn reserve(&self, bytes: usize, max_block: Duration) -> Result<u32> {
        let n = u32::try_from(bytes).map_err(|_| Error::InvalidArgument("record too large".into()))?;
        if bytes > self.cfg.buffer_memory {
            return Err(Error::InvalidArgument(format!(
                "the record is {bytes} bytes when serialized, larger than buffer_memory ({})",
                self.cfg.buffer_memory
            )));
        }
        if let Ok(p) = self.memory.try_acquire_many(n) {
            p.forget();
            return Ok(n);
        }
        match tokio::time::timeout(max_block, self.memory.acquire_many(n)).await {
            Ok(Ok(p)) => {
                p.forget();
                Ok(n)
            }
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(format!(
                "no room for the record in buffer_memory ({} bytes) within max_block ({max_block:?})",
                self.cfg.buffer_memory
            ))),
        }
    }

    /// Gives back buffer memory reserved for a record that was not appended.
    pub(crate) fn release(&self, bytes: u32) {
        self.memory.add_permits(bytes as usize);
    }

    /// Appends a record to `partition`'s open batch. `memory` bytes were reserved for it.
    /// Returns the record's delivery future and whether a batch was closed by this append.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &self,
        topic: &TopicQueues,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        memory: u32,
    ) -> Result<(DeliveryFuture, bool)> {
        if let Some(e) = self.fatal.get() {
            self.release(memory);
            return Err(e.clone());
        }
        if self.closing.load(Ordering::Acquire) {
            self.release(memory);
            return Err(Error::Closed);
        }
        let queue = topic.partition(partition);
        let mut q = queue.lock().unwrap();
        let mut closed_one = false;
        // Close the open batch if this record would overflow it.
        if let Some(open) = &q.open {
            let size = open.writer.size() + open.writer.record_size(timestamp, key, value, headers);
            if self.counted_size(topic, size) > self.cfg.batch_size && open.writer.record_count() > 0 {
                self.close_open(&mut q)?;
                closed_one = true;
            }
        }
        let started = q.open.is_none();
        if started {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let completion = BatchCompletion::new(topic.name.clone(), partition);
            self.incomplete.lock().unwrap().insert(id, completion.clone());
            q.open = Some(OpenBatch {
                writer: BatchWriter::with_capacity(
                    self.cfg.compression,
                    timestamp,
                    q.last_batch_bytes.clamp(4096, self.cfg.batch_size.max(self.cfg.max_uncompressed)) + 256,
                )
                .with_levels(self.cfg.levels),
                created: Instant::now(),
                memory: 0,
                completion,
                id,
            });
        }
        let open = q.open.as_mut().expect("open batch");
        let index = open.writer.record_count() as u32;
        open.writer.append(timestamp, key, value, headers);
        open.memory += memory;
        let fut = DeliveryFuture { completion: open.completion.clone(), index, timestamp, slot: None };
        let filled = open.writer.size();
        if self.counted_size(topic, filled) >= self.cfg.batch_size {
            self.close_open(&mut q)?;
            closed_one = true;
        }
        drop(q);
        if closed_one || started {
            self.wake.notify_one();
        }
        Ok((fut, closed_one))
    }

    /// The size a batch of `uncompressed` bytes counts as against `batch_size`: its
    /// estimated compressed size, never more than `max_uncompressed` allows.
    fn counted_size(&self, topic: &TopicQueues, uncompressed: usize) -> usize {
        if self.cfg.compression == Compression::None {
            return uncompressed;
        }
        if uncompressed >= self.cfg.max_uncompressed {
            return usize::MAX;
        }
        (uncompressed as f32 * topic.ratio() * RATIO_ESTIMATION_FACTOR) as usize
    }

    /// Closes and encodes the open batch of a partition, queueing it as ready.
    fn close_open(&self, q: &mut PartitionQueue) -> Result<()> {
        let Some(open) = q.open.take() else { return Ok(()) };
        q.last_batch_bytes = open.writer.size();
        let topic = if self.cfg.compression != Compression::None {
            self.topics.read().unwrap().get(&*open.completion.topic).cloned()
        } else {
            None
        };
        match open.writer.finish() {
            Ok(encoded) => {
                if let Some(t) = topic {
                    let u = encoded.uncompressed_size().max(1) as f32;
                    t.observe_ratio(encoded.len() as f32 / u);
                }
                q.ready.push_back(ProducerBatch {
                    topic: open.completion.topic.clone(),
                    partition: q.partition,
                    encoded,
                    created: open.created,
                    attempts: 0,
                    retry_at: None,
                    base_sequence: None,
                    memory: open.memory,
                    completion: open.completion,
                    id: open.id,
                });
                Ok(())
            }
            Err(e) => {
                // Encoding failed (a compressor error): fail the batch's records, not others.
                self.finish(open.id, &open.completion, open.memory, Outcome::Failed(e.clone()));
                Err(e)
            }
        }
    }

    /// The state of a partition's open batch for the Sender: `(created, sendable)`, where
    /// `sendable` means its linger ended (or a flush or close is hurrying it), so the Sender
    /// closes it as soon as the partition's leader can take a request. Until then it keeps
    /// taking records (up to `batch_size`), so a busy broker gets fewer, fuller batches.
    /// `None` without an open batch.
    pub(crate) fn open_state(&self, q: &PartitionQueue, now: Instant) -> Option<(Instant, bool)> {
        let created = q.open.as_ref()?.created;
        Some((created, self.is_hurrying() || created + self.cfg.linger <= now))
    }

    /// Closes and encodes the partition's open batch (the Sender drains it, or it expired),
    /// queueing it as ready. False when there was none or its encoding failed (its records
    /// then failed).
    pub(crate) fn close_for_send(&self, q: &mut PartitionQueue) -> bool {
        q.open.is_some() && self.close_open(q).is_ok()
    }

    /// Completes a batch as written.
    pub(crate) fn complete_written(&self, batch: ProducerBatch, base_offset: i64, log_append_time: i64) {
        self.finish(batch.id, &batch.completion, batch.memory, Outcome::Written { base_offset, log_append_time });
    }

    /// Completes a batch as failed.
    pub(crate) fn complete_failed(&self, batch: ProducerBatch, err: Error) {
        self.finish(batch.id, &batch.completion, batch.memory, Outcome::Failed(err));
    }

    /// Replaces a batch by the batches of its split (each already queued by the caller).
    pub(crate) fn complete_split(&self, batch: ProducerBatch, children: Vec<(u32, ProducerBatch)>, q: &mut PartitionQueue) {
        let links = children.iter().map(|(start, b)| (*start, b.completion.clone())).collect();
        {
            let mut inc = self.incomplete.lock().unwrap();
            for (_, b) in &children {
                inc.insert(b.id, b.completion.clone());
            }
        }
        // Children go back at the front in order; the first takes over the parent's memory.
        let count = children.len();
        for (i, (_, mut child)) in children.into_iter().rev().enumerate() {
            child.memory = if i + 1 == count { batch.memory } else { 0 };
            q.ready.push_front(child);
        }
        self.finish(batch.id, &batch.completion, 0, Outcome::Split(links));
    }

    /// A fresh batch (id, completion) for a split child.
    pub(crate) fn child_batch(&self, parent: &ProducerBatch, encoded: EncodedBatch, memory: u32) -> ProducerBatch {
        ProducerBatch {
            topic: parent.topic.clone(),
            partition: parent.partition,
            encoded,
            created: parent.created,
            attempts: 0,
            retry_at: None,
            base_sequence: None,
            memory,
            completion: BatchCompletion::new(parent.topic.clone(), parent.partition),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn finish(&self, id: u64, completion: &BatchCompletion, memory: u32, outcome: Outcome) {
        completion.complete(outcome);
        self.incomplete.lock().unwrap().remove(&id);
        self.release(memory);
    }

    /// Waits until every batch that exists now has completed.
    pub(crate) async fn flush(&self) {
        self.flushing.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
        let pending: Vec<Arc<BatchCompletion>> = self.incomplete.lock().unwrap().values().cloned().collect();
        for c in pending {
            let mut slot = None;
            std::future::poll_fn(|cx| match c.outcome_or_register(&mut slot, cx.waker()) {
                Some(_) => Poll::Ready(()),
                None => Poll::Pending,
            })
            .await;
        }
        self.flushing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether nothing is queued or in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.incomplete.lock().unwrap().is_empty()
    }

    /// Stops taking records; the Sender sends what is queued without lingering.
    pub(crate) fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Whether a flush or close asks for everything to go out without waiting.
    pub(crate) fn is_hurrying(&self) -> bool {
        self.flushing.load(Ordering::Acquire) > 0 || self.closing.load(Ordering::Acquire)
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Marks the producer as failed for good; later sends fail with `err` (made fatal by
    /// [`Error::into_fatal`] if it is not, so the predicates of what callers see never lie).
    pub(crate) fn set_fatal(&self, err: Error) {
        let _ = self.fatal.set(err.into_fatal());
    }

    pub(crate) fn fatal(&self) -> Option<&Error> {
        self.fatal.get()
    }

    /// Fails every batch that has not completed (close timed out, or a fatal error).
    /// Every partition's sequences restart at 0 (a new producer id or epoch). Batches that
    /// were never sent lose the sequence they would have had.
    pub(crate) fn reset_sequences(&self) {
        for t in self.all_topics() {
            for queue in t.partitions.read().unwrap().iter() {
                let mut q = queue.lock().unwrap();
                q.next_sequence = 0;
                q.last_acked = None;
                for b in q.ready.iter_mut() {
                    b.base_sequence = None;
                }
            }
        }
    }

    /// Fails every batch that was never sent (open ones and ready ones without an
    /// attempt) with `err`; batches being retried or in flight are left to finish.
    pub(crate) fn fail_unsent(&self, err: &Error) {
        self.fail_queued(err, |b| b.attempts == 0);
    }

    /// Fails every batch not in flight (the producer is fenced or closed).
    pub(crate) fn abort_all(&self, err: &Error) {
        self.fail_queued(err, |_| true);
    }

    /// Fails open batches and the ready batches `which` selects.
    fn fail_queued(&self, err: &Error, which: impl Fn(&ProducerBatch) -> bool) {
        for t in self.all_topics() {
            let parts: Vec<_> = t.partitions.read().unwrap().clone();
            for q in parts {
                let mut q = q.lock().unwrap();
                if let Some(open) = q.open.take() {
                    self.finish(open.id, &open.completion, open.memory, Outcome::Failed(err.clone()));
                }
                let (fail, keep): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut q.ready).into_iter().partition(|b| which(b));
                q.ready = keep;
                for b in fail {
                    self.complete_failed(b, err.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(batch_size: usize, linger_ms: u64) -> RecordAccumulator {
        RecordAccumulator::new(AccumulatorConfig {
            batch_size,
            max_uncompressed: 1 << 20,
            linger: Duration::from_millis(linger_ms),
            compression: Compression::None,
            levels: Default::default(),
            buffer_memory: 1 << 20,
        })
    }

    fn batch_with_seq(a: &RecordAccumulator, t: &TopicQueues, seq: Option<i32>) -> ProducerBatch {
        let (_f, _) = a.append(t, 0, 1, None, Some(b"v"), &[], 1).unwrap();
        let q = t.partition(0);
        let mut q = q.lock().unwrap();
        a.close_open(&mut q).unwrap();
        let mut b = q.ready.pop_back().unwrap();
        b.base_sequence = seq;
        b
    }

    #[tokio::test]
    async fn batches_close_at_batch_size_and_keep_append_order() {
        let a = acc(200, 1000);
        let t = a.topic("t");
        let mut closed = 0;
        for i in 0..20u32 {
            let v = format!("value-{i:04}");
            let (_f, c) = a.append(&t, 0, 1000 + i as i64, Some(b"k"), Some(v.as_bytes()), &[], 1).unwrap();
            closed += c as u32;
        }
        let q = t.partition(0);
        let q = q.lock().unwrap();
        assert!(closed >= 2, "20 records of ~20 bytes into 200-byte batches close several");
        assert_eq!(q.ready.len() as u32, closed);
        assert!(q.ready.iter().all(|b| b.encoded.len() <= 200 + 40));
        let ids: Vec<u64> = q.ready.iter().map(|b| b.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[tokio::test]
    async fn retries_go_back_in_sequence_order() {
        let a = acc(16384, 1000);
        let t = a.topic("t");
        let b0 = batch_with_seq(&a, &t, Some(0));
        let b1 = batch_with_seq(&a, &t, Some(1));
        let b2 = batch_with_seq(&a, &t, Some(2));
        let fresh = batch_with_seq(&a, &t, None);
        let q = t.partition(0);
        let mut q = q.lock().unwrap();
        q.ready.push_back(fresh);
        q.requeue(b2);
        q.requeue(b0);
        q.requeue(b1);
        let seqs: Vec<Option<i32>> = q.ready.iter().map(|b| b.base_sequence).collect();
        assert_eq!(seqs, vec![Some(0), Some(1), Some(2), None]);
    }

    #[test]
    fn sequence_order_survives_the_wrap() {
        assert!(seq_before(i32::MAX - 1, i32::MAX));
        assert!(seq_before(i32::MAX, 0));
        assert!(!seq_before(5, 3));
    }

    #[tokio::test]
    async fn delivery_futures_resolve_with_offsets_and_split_children() {
        let a = acc(16384, 1000);
        let t = a.topic("t");
        let mut futs = Vec::new();
        for i in 0..4 {
            futs.push(a.append(&t, 0, 10 + i, None, Some(b"x"), &[], 1).unwrap().0);
        }
        let q = t.partition(0);
        let batch = {
            let mut q = q.lock().unwrap();
            a.close_open(&mut q).unwrap();
            q.ready.pop_front().unwrap()
        };
        // Split into [0,1] and [2,3]; the first child written at 100, the second at 200.
        let c1 = a.child_batch(&batch, batch.encoded.clone(), 0);
        let c2 = a.child_batch(&batch, batch.encoded.clone(), 0);
        {
            let mut q = q.lock().unwrap();
            a.complete_split(batch, vec![(0, c1), (2, c2)], &mut q);
            let c1 = q.ready.pop_front().unwrap();
            let c2 = q.ready.pop_front().unwrap();
            a.complete_written(c1, 100, -1);
            a.complete_written(c2, 200, 5555);
        }
        let got: Vec<(i64, i64)> = futures::future::join_all(futs)
            .await
            .into_iter()
            .map(|r| r.map(|m| (m.offset, m.timestamp)).unwrap())
            .collect();
        assert_eq!(got, vec![(100, 10), (101, 11), (200, 5555), (201, 5555)]);
        assert!(a.is_empty());
    }

    #[tokio::test]
    async fn compressed_batches_are_sized_by_their_estimated_compressed_size() {
        let mut cfg_acc = acc(1000, 1000);
        cfg_acc.cfg.compression = Compression::Lz4;
        let a = cfg_acc;
        let t = a.topic("t");
        let value = [b'a'; 100];
        for _ in 0..2000 {
            let _ = a.append(&t, 0, 1, None, Some(&value), &[], 1).unwrap();
        }
        let q = t.partition(0);
        let q = q.lock().unwrap();
        // The first batch closes at ~1000 uncompressed bytes (ratio estimate 1.0); as the
        // estimate learns how well this compresses, later batches carry more records.
        let counts: Vec<i32> = q.ready.iter().map(|b| b.record_count()).collect();
        assert!(counts[0] <= 10, "{counts:?}");
        assert!(*counts.last().unwrap() > 3 * counts[0], "{counts:?}");
        assert!(q.ready.iter().all(|b| b.encoded.len() <= 1000 * 2), "compressed batches stay near batch_size");
        assert!(t.ratio() < 0.5);
    }

    /// A waker that counts its wake-ups.
    struct CountingWaker(AtomicUsize);
    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_future_polled_again_replaces_its_own_waker_slot() {
        let a = acc(16384, 1000);
        let t = a.topic("t");
        let (mut f1, _) = a.append(&t, 0, 1, None, Some(b"x"), &[], 1).unwrap();
        let (mut f2, _) = a.append(&t, 0, 1, None, Some(b"y"), &[], 1).unwrap();
        let counters: Vec<Arc<CountingWaker>> = (0..3).map(|_| Arc::new(CountingWaker(AtomicUsize::new(0)))).collect();
        let wakers: Vec<Waker> = counters.iter().map(|c| Waker::from(c.clone())).collect();
        // f1 moves from task 0 to task 1 (e.g. polled by another task); f2 stays on task 2.
        for (which, w) in [(1, 0), (1, 1), (2, 2), (2, 2)] {
            let f = if which == 1 { &mut f1 } else { &mut f2 };
            assert!(Pin::new(f).poll(&mut Context::from_waker(&wakers[w])).is_pending());
        }
        let completion = f1.completion.clone();
        assert_eq!(completion.wakers.lock().unwrap().len(), 2, "one slot per future, however often it is polled");
        let q = t.partition(0);
        let batch = {
            let mut q = q.lock().unwrap();
            a.close_open(&mut q).unwrap();
            q.ready.pop_front().unwrap()
        };
        a.complete_written(batch, 10, -1);
        let woken: Vec<usize> = counters.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, vec![0, 1, 1], "the replaced waker is not woken, the current ones are");
        assert_eq!(f1.await.unwrap().offset, 10);
        assert_eq!(f2.await.unwrap().offset, 11);
    }

    #[tokio::test]
    async fn buffer_memory_blocks_then_times_out_with_a_clear_error() {
        let a = acc(100, 1000);
        let n = a.reserve(1 << 20, Duration::from_millis(10)).await.unwrap();
        let e = a.reserve(10, Duration::from_millis(20)).await.unwrap_err();
        assert!(e.to_string().contains("buffer_memory"), "{e}");
        a.release(n);
        a.reserve(10, Duration::from_millis(20)).await.unwrap();
        let e = a.reserve(2 << 20, Duration::from_millis(20)).await.unwrap_err();
        assert!(e.to_string().contains("larger than buffer_memory"), "{e}");
    }
}
