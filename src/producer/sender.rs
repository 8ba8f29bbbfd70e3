//! The Sender: one task per producer that drains ready batches into produce requests, one
//! request per broker per round (one batch per partition), up to `max_in_flight` requests
//! per broker, and decides for every answer whether a batch is done, retried or failed.
//!
//! Ordering and idempotence rules (the Java client's):
//! - a batch gets its sequence when first drained and keeps it on every retry;
//! - a partition's batches go to one broker at a time: while some are in flight to a
//!   broker, none go to another (after a leader change, the old requests finish first);
//! - a retried batch goes back in sequence order, and while the front batch of a partition
//!   is a retry, it is sent alone (nothing else of that partition in flight);
//! - an outcome that is unknown (timeout, disconnect) is retried with the same sequence and
//!   never reported as failed while a request for it may still be in flight;
//! - a sequence gap (a batch failed for good, or the broker lost our state) bumps the
//!   epoch (KIP-360) once nothing is in flight, and sequences restart at 0.
//!
//! Batching rules (ours, on top of the Java client's drain):
//! - a partition's open batch closes only when it is drained, so it takes records until
//!   its linger ended *and* its leader can take a request;
//! - while a batch of the partition is in flight, a lingered open batch (one not full)
//!   waits for that answer (Nagle's rule): a slow broker gets fewer, fuller batches instead
//!   of one tiny batch per linger, and a fast one, with nothing in flight when linger ends,
//!   sees no difference. Full batches and flushes are not held;
//! - the Sender never waits for metadata: it drains with the current snapshot and
//!   refreshes a stale one in the background.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId};
use kafka_protocol::protocol::Request;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::accumulator::{ProducerBatch, RecordAccumulator};
use super::config::Acks;
use super::identity::ProducerIdentity;
use super::partitioner::LoadStats;
use super::request::{decode_produce_response, encode_produce, PartitionData};
use crate::client::ClientCore;
use crate::error::{Error, ErrorCode, Result};
use crate::network::ConnKind;
use crate::record::BatchWriter;

/// What the Sender needs from the producer config.
pub(crate) struct SenderConfig {
    pub acks: Acks,
    pub idempotent: bool,
    pub max_in_flight: usize,
    pub max_request_size: usize,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub request_timeout: Duration,
    pub delivery_timeout: Duration,
    /// `partitioner_adaptive_partitioning`: publish per-topic load stats each round.
    pub adaptive: bool,
    /// `partitioner_availability_timeout` (zero: off): a broker that had data ready but
    /// could not take it for longer than this has its partitions left out of the stats.
    pub availability_timeout: Duration,
}

/// Per-broker latency for `availability_timeout` (Java's `NodeLatencyStats`): when a broker
/// last had data ready to send and when it last could take it; `ready - drained` is how
/// long its data has been waiting. Kept only while the timeout is on.
#[derive(Debug, Default)]
struct NodeLatencies {
    timeout: Duration,
    nodes: HashMap<i32, (Instant, Instant)>,
}

impl NodeLatencies {
    fn new(timeout: Duration) -> NodeLatencies {
        NodeLatencies { timeout, nodes: HashMap::new() }
    }

    /// Whether `broker` counts as unavailable: its data waited longer than the timeout.
    fn unavailable(&self, broker: i32) -> bool {
        !self.timeout.is_zero() && self.nodes.get(&broker).is_some_and(|(ready, drained)| ready.duration_since(*drained) > self.timeout)
    }

    /// Java's `updateNodeLatencyStats` for one round: every broker that had data ready
    /// moves its ready time; one that could take a request its drained time too.
    fn note_round(&mut self, round: HashMap<i32, bool>, now: Instant) {
        if self.timeout.is_zero() {
            return;
        }
        for (broker, drainable) in round {
            let (ready, drained) = self.nodes.entry(broker).or_insert((now, now));
            *ready = now;
            if drainable {
                *drained = now;
            }
        }
    }
}

/// What the Sender may do with a partition's batches (transaction protocol v1).
pub(crate) enum Gate {
    /// The partition is in the transaction (or v2 adds it implicitly): send.
    Send,
    /// AddPartitionsToTxn for it has not completed yet: hold.
    Hold,
    /// The transaction failed before the partition was added: fail the batches.
    Fail(Error),
}

/// What the Sender asks of, and tells, the transaction of a transactional producer.
///
/// Owned here, below the transaction layer, so that the Sender does not import
/// `txn::manager`: `TransactionManager` implements it (issue 12).
pub(crate) trait TransactionHooks: Send + Sync {
    /// The `transactional.id` Produce requests carry.
    fn transactional_id(&self) -> Arc<str>;
    /// Whether the transaction uses protocol v2 (KIP-890): Produce v12 adds partitions.
    fn uses_v2(&self) -> bool;
    /// A Produce request of the transaction was dispatched.
    fn on_produce_sent(&self);
    /// May a partition's ready batches go now?
    fn gate(&self, topic: &str, partition: i32) -> Gate;
    /// A batch failed for good (`had_sequence`: it leaves a sequence gap).
    fn on_batch_failed(&self, e: &Error, had_sequence: bool);
}

/// A produce request that came back (or broke).
struct Completed {
    broker: i32,
    batches: Vec<ProducerBatch>,
    result: Result<Option<ProduceResponse>>,
}

pub(crate) struct Sender {
    core: Arc<ClientCore>,
    acc: Arc<RecordAccumulator>,
    cfg: SenderConfig,
    identity: Arc<Mutex<Option<ProducerIdentity>>>,
    /// A sequence gap was seen: bump the epoch once nothing is in flight.
    bump_needed: bool,
    in_flight: FuturesUnordered<BoxFuture<'static, Completed>>,
    per_broker: HashMap<i32, usize>,
    /// The background metadata refresh last started, and when.
    refreshing: Option<(Instant, tokio::task::JoinHandle<()>)>,
    /// Per-broker latency for `availability_timeout`.
    latency: NodeLatencies,
    /// The transaction manager of a transactional producer: batches carry the
    /// transactional flag and id, v1 holds a partition's batches until it is added to the
    /// transaction, and a failed batch makes the transaction abortable.
    txn: Option<Arc<dyn TransactionHooks>>,
}

impl Sender {
    pub(crate) fn new(
        core: Arc<ClientCore>,
        acc: Arc<RecordAccumulator>,
        cfg: SenderConfig,
        identity: Arc<Mutex<Option<ProducerIdentity>>>,
        txn: Option<Arc<dyn TransactionHooks>>,
    ) -> Sender {
        let latency = NodeLatencies::new(cfg.availability_timeout);
        Sender {
            core,
            acc,
            cfg,
            identity,
            bump_needed: false,
            in_flight: FuturesUnordered::new(),
            per_broker: HashMap::new(),
            refreshing: None,
            latency,
            txn,
        }
    }

    /// A sequence gap: the idempotent producer bumps its epoch itself; a transactional one
    /// leaves that to the TransactionManager (after the abort the failed batch forces).
    fn need_bump(&mut self) {
        if self.txn.is_none() {
            self.bump_needed = true;
        }
    }

    /// Fails a batch for good, telling the transaction (if any) that it cannot commit.
    /// In a transaction the records' error is abortable ([`Error::TransactionAbortable`]
    /// around the cause) unless it is fatal.
    fn fail_batch(&self, b: ProducerBatch, err: Error) {
        let err = match &self.txn {
            Some(txn) => {
                txn.on_batch_failed(&err, b.base_sequence.is_some());
                if err.is_fatal() || matches!(err, Error::TransactionAbortable(_)) {
                    err
                } else {
                    Error::TransactionAbortable(Box::new(err))
                }
            }
            None => err,
        };
        self.acc.complete_failed(b, err);
    }

    /// Runs until the producer is closed and everything queued has completed.
    pub(crate) async fn run(mut self) {
        loop {
            if self.acc.is_closing() && self.acc.is_empty() && self.in_flight.is_empty() {
                break;
            }
            if let Some(err) = self.acc.fatal().cloned() {
                self.acc.abort_all(&err);
                if self.in_flight.is_empty() {
                    break;
                }
            } else if self.bump_needed && self.in_flight.is_empty() {
                self.bump_epoch().await;
            }
            let next = if self.bump_needed || self.acc.fatal().is_some() {
                // Send nothing new until the epoch is bumped (or the producer is dead).
                Instant::now() + self.cfg.retry_backoff
            } else {
                self.drain().await
            };
            tokio::select! {
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => self.handle(done),
                _ = self.acc.wake.notified() => {}
                _ = tokio::time::sleep_until(next) => {}
            }
        }
        debug!("sender stopped");
    }

    /// One round: close lingered batches, expire old ones, and send what is ready.
    /// Returns when the next round is due at the latest.
    async fn drain(&mut self) -> Instant {
        let now = Instant::now();
        let mut next = now + Duration::from_secs(1);
        // Never wait for metadata here: a refresh that waits on a slow broker would hold
        // every partition's batches (and the handling of answers) for as long. Drain with
        // the snapshot; a stale one is refreshed in the background, which wakes this task.
        let cluster = self.core.metadata.snapshot();
        if self.core.metadata.needs_refresh() {
            self.refresh_metadata(now);
            next = next.min(now + self.cfg.retry_backoff);
        }
        let identity = *self.identity.lock().unwrap();
        let mut requests: HashMap<i32, (usize, Vec<ProducerBatch>)> = HashMap::new();
        let mut need_metadata = false;
        let mut more_ready = false;
        // Brokers that had data ready this round, and whether they could take a request.
        let mut node_round: HashMap<i32, bool> = HashMap::new();
        for topic in self.acc.all_topics() {
            let parts: Vec<_> = topic.partitions.read().unwrap().clone();
            // Each partition's leader, by index: one pass over the metadata per round, not a
            // search per partition.
            let mut leaders: Vec<Option<i32>> = Vec::new();
            if let Some(t) = cluster.topics.get(&*topic.name) {
                leaders.resize(t.partitions.len(), None);
                for p in &t.partitions {
                    if let Some(slot) = usize::try_from(p.partition).ok().and_then(|i| leaders.get_mut(i)) {
                        *slot = p.leader;
                    }
                }
            }
            let partition_count = leaders.len();
            // Adaptive load stats (Java's partitionReady): only once every partition has a
            // queue, else a partition without one could never be picked.
            let mut queues: Option<Vec<(i32, u32)>> =
                (self.cfg.adaptive && partition_count > 0 && parts.len() >= partition_count).then(Vec::new);
            for queue in parts {
                let mut q = queue.lock().unwrap();
                let leader = leaders.get(q.partition as usize).copied().flatten();
                // The open batch stays open (taking records) until this round can send it:
                // its linger ended and the partition's leader takes a request now.
                let open = self.acc.open_state(&q, now);
                if let Some((created, sendable)) = open {
                    if created + self.cfg.delivery_timeout <= now {
                        // Its delivery timeout passed while it waited: close it so that it
                        // expires with the ready batches below.
                        self.acc.close_for_send(&mut q);
                    } else if !sendable {
                        next = next.min(created + self.acc.cfg.linger);
                    }
                }
                // Fail batches whose delivery timeout passed while they waited (never one in
                // flight: those are in `self.in_flight`, not here).
                while let Some(front) = q.ready.front() {
                    if front.created + self.cfg.delivery_timeout > now {
                        next = next.min(front.created + self.cfg.delivery_timeout);
                        break;
                    }
                    let b = q.ready.pop_front().expect("front");
                    let err = expired(&b, self.cfg.delivery_timeout);
                    if self.cfg.idempotent && b.base_sequence.is_some() {
                        self.need_bump();
                    }
                    self.fail_batch(b, err);
                }
                if let (Some(qs), Some(l)) = (queues.as_mut(), leader) {
                    if (q.partition as usize) < partition_count && !self.latency.unavailable(l) {
                        qs.push((q.partition, q.queue_len() as u32));
                    }
                }
                let open = self.acc.open_state(&q, now);
                let open_sendable = open.is_some_and(|(_, sendable)| sendable);
                if q.ready.is_empty() && !open_sendable {
                    continue;
                }
                if let Some(txn) = &self.txn {
                    match txn.gate(&topic.name, q.partition) {
                        Gate::Send => {}
                        Gate::Hold => continue,
                        Gate::Fail(e) => {
                            // Never sent (the partition was never added): nothing in flight.
                            if open_sendable {
                                self.acc.close_for_send(&mut q);
                            }
                            while let Some(b) = q.ready.pop_front() {
                                self.acc.complete_failed(b, e.clone());
                            }
                            continue;
                        }
                    }
                }
                // The candidate: the front ready batch, else the lingered open batch (new:
                // never sent, no sequence yet).
                let (attempts, retry_at, created) = match (q.ready.front(), open) {
                    (Some(front), _) => (front.attempts, front.retry_at, front.created),
                    (None, Some((created, _))) => (0, None, created),
                    (None, None) => continue,
                };
                if let Some(at) = retry_at {
                    if at > now {
                        next = next.min(at);
                        continue;
                    }
                }
                let Some(leader) = leader else {
                    need_metadata = true;
                    continue;
                };
                let broker_load = self.per_broker.get(&leader).copied().unwrap_or(0);
                if !self.cfg.availability_timeout.is_zero() {
                    node_round.entry(leader).or_insert(broker_load < self.cfg.max_in_flight);
                }
                if q.in_flight > 0 && q.in_flight_broker != Some(leader) {
                    continue; // the old leader's requests finish first
                }
                if attempts > 0 && q.in_flight > 0 {
                    continue; // a retry goes alone
                }
                if self.cfg.idempotent && q.last_acked.is_none() && q.in_flight > 0 {
                    // Until the partition acknowledged a sequence in this epoch, one batch at a
                    // time: a broker that does not know the producer yet takes any first
                    // sequence, so a later batch overtaking a rejected first one would be
                    // written ahead of it and strand it.
                    continue;
                }
                if q.in_flight >= self.cfg.max_in_flight {
                    continue;
                }
                if broker_load >= self.cfg.max_in_flight {
                    continue;
                }
                // Fewer, fuller requests: while the broker is busy with earlier requests, a
                // partition's only ready batch (one that filled before its linger ended)
                // waits, at most until its linger ends, for the next response, so it travels
                // with the batches that become ready meanwhile. A backlog (two or more ready
                // batches) or a flush goes at once.
                let hold_until = created + self.acc.cfg.linger;
                if broker_load > 0 && q.ready.len() < 2 && !self.acc.is_hurrying() && hold_until > now {
                    next = next.min(hold_until);
                    continue;
                }
                // Nagle for partitions: a lingered open batch (not full, so nothing is ready)
                // stays open while an earlier batch of its partition is in flight, and goes
                // when that answer comes (the answer wakes this task), carrying everything
                // that came meanwhile. On a fast broker nothing is in flight when linger
                // ends, so this costs nothing; on a slow one it replaces a queue of tiny
                // requests (one per linger) by one growing batch, which is what lets a busy
                // broker catch up. Full batches, flush, commit and close never wait here.
                if q.ready.is_empty() && q.in_flight > 0 && !self.acc.is_hurrying() {
                    continue;
                }
                // Drained now: only here does a lingered open batch close (Java's drain).
                if q.ready.is_empty() && !self.acc.close_for_send(&mut q) {
                    continue;
                }
                let Some(front) = q.ready.front() else { continue };
                let (size, batches) = requests.entry(leader).or_default();
                if !batches.is_empty() && *size + front.encoded.len() > self.cfg.max_request_size {
                    more_ready = true;
                    continue;
                }
                let mut b = q.ready.pop_front().expect("front");
                if let (true, Some(id)) = (self.cfg.idempotent, identity) {
                    if b.base_sequence.is_none() {
                        let seq = q.next_sequence;
                        q.next_sequence = increment_sequence(seq, b.record_count());
                        b.base_sequence = Some(seq);
                        b.encoded.set_producer_state(id.producer_id, id.epoch, seq, self.txn.is_some());
                    }
                }
                b.attempts += 1;
                b.retry_at = None;
                q.in_flight += 1;
                q.in_flight_broker = Some(leader);
                *size += b.encoded.len();
                batches.push(b);
                if !q.ready.is_empty() || self.acc.open_state(&q, now).is_some_and(|(_, sendable)| sendable) {
                    more_ready = true;
                }
            }
            if self.cfg.adaptive {
                topic.sticky.set_load(queues.and_then(|qs| LoadStats::from_queues(partition_count as i32, &qs)));
            }
        }
        self.latency.note_round(node_round, now);
        if need_metadata {
            self.core.metadata.invalidate();
            self.refresh_metadata(now);
            next = next.min(now + self.cfg.retry_backoff);
        }
        let sent_any = !requests.is_empty();
        for (broker, (_, batches)) in requests {
            self.dispatch(broker, batches);
        }
        if sent_any && more_ready {
            next = now;
        }
        next
    }

    /// Starts a metadata refresh in the background unless one runs or began less than
    /// `retry_backoff` ago; when it ends (either way) it wakes the Sender, which drains with
    /// the new snapshot.
    fn refresh_metadata(&mut self, now: Instant) {
        if let Some((started, task)) = &self.refreshing {
            if !task.is_finished() || now < *started + self.cfg.retry_backoff {
                return;
            }
        }
        let (core, acc, timeout) = (self.core.clone(), self.acc.clone(), self.cfg.request_timeout);
        let task = tokio::spawn(async move {
            match tokio::time::timeout(timeout, core.cluster()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => debug!(error = %e, "metadata refresh failed; the Sender keeps the last snapshot"),
                Err(_) => debug!("metadata refresh timed out; the Sender keeps the last snapshot"),
            }
            acc.wake.notify_one();
        });
        self.refreshing = Some((now, task));
    }

    /// Sends one produce request to `broker` in the background. The batches are written
    /// from their own buffers (see `request.rs`), grouped by topic.
    fn dispatch(&mut self, broker: i32, mut batches: Vec<ProducerBatch>) {
        *self.per_broker.entry(broker).or_default() += 1;
        batches.sort_by(|a, b| a.topic.cmp(&b.topic));
        let core = self.core.clone();
        let acks = self.cfg.acks;
        let timeout_ms = self.cfg.request_timeout.as_millis().min(i32::MAX as u128) as i32;
        // Transaction protocol v1: Produce v12 would tell the broker we add partitions
        // implicitly (KIP-890), so stay at v11.
        let txn = self.txn.as_ref().map(|t| {
            t.on_produce_sent();
            (t.transactional_id(), t.uses_v2())
        });
        self.in_flight.push(Box::pin(async move {
            let result = async {
                let conn = core.broker_known(broker, ConnKind::Produce).await?;
                let mut version = conn.version_for::<ProduceRequest>()?;
                if let Some((_, false)) = &txn {
                    version = version.min(11);
                }
                let parts: Vec<PartitionData<'_>> = batches
                    .iter()
                    .map(|b| PartitionData { topic: &b.topic, partition: b.partition, records: b.encoded.bytes() })
                    .collect();
                let frame = encode_produce(version, &core.config.client_id, txn.as_ref().map(|(id, _)| &**id), acks.wire(), timeout_ms, &parts)?;
                match conn.send_frame(frame, ProduceRequest::KEY, acks != Acks::Zero).await? {
                    None => Ok(None),
                    Some(bytes) => decode_produce_response(bytes, version).map(Some).map_err(|detail| Error::Protocol {
                        broker: format!("broker {broker}"),
                        detail: format!("Produce v{version} response: {detail}"),
                    }),
                }
            }
            .await;
            Completed { broker, batches, result }
        }));
    }

    /// Applies a produce response (or the request's failure) to its batches.
    fn handle(&mut self, done: Completed) {
        if let Some(n) = self.per_broker.get_mut(&done.broker) {
            *n = n.saturating_sub(1);
        }
        match done.result {
            Err(e) => {
                self.core.on_error(&e);
                for b in done.batches {
                    self.retry_or_fail(b, e.clone(), None);
                }
            }
            Ok(None) => {
                for b in done.batches {
                    self.on_written(b, -1, -1);
                }
            }
            Ok(Some(resp)) => {
                for b in done.batches {
                    let found = resp
                        .responses
                        .iter()
                        .find(|t| t.name.0.as_str() == &*b.topic)
                        .and_then(|t| t.partition_responses.iter().find(|p| p.index == b.partition));
                    match found {
                        None => {
                            let e = Error::Protocol {
                                broker: format!("broker {}", done.broker),
                                detail: format!("produce response has no result for {}-{}", b.topic, b.partition),
                            };
                            self.retry_or_fail(b, e, None);
                        }
                        Some(r) => match ErrorCode::from_code(r.error_code) {
                            None => self.on_written(b, r.base_offset, r.log_append_time_ms),
                            // An earlier attempt of this batch was written; its offset is lost.
                            Some(ErrorCode::DuplicateSequenceNumber) => self.on_written(b, -1, -1),
                            Some(ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge) if b.record_count() > 1 => {
                                self.split(b)
                            }
                            Some(code) => {
                                let mut msg = r.error_message.as_ref().map(|m| m.to_string());
                                if let Some(first) = r.record_errors.first() {
                                    let detail = first.batch_index_error_message.as_ref().map(|m| m.to_string());
                                    msg = Some(format!(
                                        "{}record {} of the batch: {}",
                                        msg.map(|m| format!("{m}; ")).unwrap_or_default(),
                                        first.batch_index,
                                        detail.unwrap_or_default()
                                    ));
                                }
                                let err = Error::broker(code, "Produce", msg, Some(b.topic.to_string()), Some(b.partition));
                                self.core.on_error(&err);
                                self.retry_or_fail(b, err, Some(r.log_start_offset));
                            }
                        },
                    }
                }
            }
        }
    }

    fn on_written(&mut self, b: ProducerBatch, base_offset: i64, log_append_time: i64) {
        let queue = self.acc.topic(&b.topic).partition(b.partition);
        let mut q = queue.lock().unwrap();
        settle_in_flight(&mut q);
        if let Some(seq) = b.base_sequence {
            q.last_acked = Some(increment_sequence(seq, b.record_count() - 1));
        }
        drop(q);
        self.acc.complete_written(b, base_offset, log_append_time);
    }

    fn retry_or_fail(&mut self, mut b: ProducerBatch, err: Error, log_start_offset: Option<i64>) {
        let queue = self.acc.topic(&b.topic).partition(b.partition);
        let mut q = queue.lock().unwrap();
        settle_in_flight(&mut q);
        let code = err.code();
        let mut retriable = err.is_retriable();
        if self.txn.is_some()
            && matches!(
                code,
                Some(
                    ErrorCode::OutOfOrderSequenceNumber
                        | ErrorCode::UnknownProducerId
                        | ErrorCode::InvalidProducerEpoch
                        | ErrorCode::InvalidProducerIdMapping
                        | ErrorCode::TransactionAbortable
                        | ErrorCode::InvalidTxnState
                )
            )
        {
            // In a transaction these end the transaction, not just the batch: it fails,
            // the transaction must be aborted (the epoch is bumped then if needed).
            drop(q);
            self.fail_batch(b, err);
            return;
        }
        if self.cfg.idempotent {
            match code {
                Some(ErrorCode::ProducerFenced) => {
                    drop(q);
                    self.acc.set_fatal(err.clone());
                    self.fail_batch(b, err);
                    return;
                }
                Some(ErrorCode::OutOfOrderSequenceNumber) => {
                    // Not next in line: an earlier batch is being retried; this one follows it.
                    // Next in line: the broker lost our sequence state; bump and resend.
                    // Behind the broker: it will never take this sequence; restart numbering.
                    let expected = q.last_acked.map(|s| increment_sequence(s, 1)).unwrap_or(0);
                    let behind = b.base_sequence.is_some_and(|s| super::accumulator::seq_before(s, expected));
                    if b.base_sequence == Some(expected) || behind {
                        warn!(topic = %b.topic, partition = b.partition, base_sequence = ?b.base_sequence, expected, "out-of-order sequence the broker cannot accept; bumping the epoch");
                        self.need_bump();
                    }
                    retriable = true;
                }
                Some(ErrorCode::UnknownProducerId) => {
                    // The broker no longer knows this producer (its records were deleted by
                    // retention): bump (KIP-360) unless the log is empty (retry as is).
                    if log_start_offset != Some(-1) {
                        self.need_bump();
                    }
                    retriable = true;
                }
                Some(ErrorCode::InvalidProducerEpoch) => {
                    self.need_bump();
                }
                _ => {}
            }
        }
        let in_time = b.created.elapsed() < self.cfg.delivery_timeout;
        if retriable && b.attempts <= self.cfg.retries && in_time {
            debug!(topic = %b.topic, partition = b.partition, attempts = b.attempts, base_sequence = ?b.base_sequence, records = b.record_count(), error = %err, "retrying batch");
            b.retry_at = Some(Instant::now() + self.cfg.retry_backoff);
            q.requeue(b);
            drop(q);
            self.acc.wake.notify_one();
        } else {
            drop(q);
            if self.cfg.idempotent && b.base_sequence.is_some() {
                // Later batches carry sequences after this one: restart the numbering.
                self.need_bump();
            }
            let err = if retriable && !in_time { expired(&b, self.cfg.delivery_timeout) } else { err };
            self.fail_batch(b, err);
        }
    }

    /// MESSAGE_TOO_LARGE for a batch of several records: split it in halves (by records)
    /// and send the halves in its place, in order.
    fn split(&mut self, b: ProducerBatch) {
        let queue = self.acc.topic(&b.topic).partition(b.partition);
        let mut q = queue.lock().unwrap();
        settle_in_flight(&mut q);
        let records = match crate::record::decode::batches(b.encoded.bytes(), usize::MAX >> 1).next() {
            Some(Ok(batch)) => batch.records,
            _ => {
                drop(q);
                let e = Error::Protocol {
                    broker: "local".into(),
                    detail: "cannot re-read a batch to split it".into(),
                };
                self.fail_batch(b, e);
                return;
            }
        };
        let compression = self.acc.cfg.compression;
        let half = records.len().div_ceil(2);
        let mut children = Vec::new();
        for (i, chunk) in records.chunks(half).enumerate() {
            let mut w = BatchWriter::new(compression, chunk[0].timestamp).with_levels(self.acc.cfg.levels);
            for r in chunk {
                w.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers.to_vec());
            }
            match w.finish() {
                Ok(encoded) => children.push(((i * half) as u32, self.acc.child_batch(&b, encoded, 0))),
                Err(e) => {
                    drop(q);
                    self.fail_batch(b, e);
                    return;
                }
            }
        }
        info!(topic = %b.topic, partition = b.partition, records = records.len(), "batch too large for the broker; split in two");
        if let (true, Some(base)) = (self.cfg.idempotent, b.base_sequence) {
            // The halves take the parent's sequence range: first half at its base, second
            // after it, so batches already numbered after the parent stay valid.
            let id = self.identity.lock().unwrap().expect("idempotent producer has an id");
            let mut seq = base;
            for (_, c) in children.iter_mut() {
                c.base_sequence = Some(seq);
                c.encoded.set_producer_state(id.producer_id, id.epoch, seq, self.txn.is_some());
                seq = increment_sequence(seq, c.record_count());
            }
        }
        self.acc.complete_split(b, children, &mut q);
        drop(q);
        self.acc.wake.notify_one();
    }

    /// KIP-360: a new epoch for the same producer id (or a new id when the broker cannot
    /// bump), then every partition's sequences restart at 0.
    async fn bump_epoch(&mut self) {
        let current = *self.identity.lock().unwrap();
        let result = self
            .core
            .with_retries("InitProducerId (epoch bump)", self.cfg.delivery_timeout, || async {
                let conn = self.core.any_broker().await?;
                let version = conn.version_for::<InitProducerIdRequest>()?;
                let mut req = InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(i32::MAX);
                if let (Some(id), true) = (current, version >= 3) {
                    req = req.with_producer_id(ProducerId(id.producer_id)).with_producer_epoch(id.epoch);
                } else {
                    req = req.with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
                }
                let resp = conn.send_at(&req, version).await?;
                Error::check_code(resp.error_code, "InitProducerId", None, None, None)?;
                Ok(ProducerIdentity { producer_id: resp.producer_id.0, epoch: resp.producer_epoch })
            })
            .await;
        match result {
            Ok(id) => {
                info!(producer_id = id.producer_id, epoch = id.epoch, "bumped producer epoch; sequences restart at 0");
                *self.identity.lock().unwrap() = Some(id);
                self.acc.reset_sequences();
                self.bump_needed = false;
            }
            Err(e) => {
                warn!(error = %e, "epoch bump failed");
                if e.is_fatal() {
                    self.acc.set_fatal(e);
                }
            }
        }
    }
}

/// One in-flight batch of the partition came back.
fn settle_in_flight(q: &mut super::accumulator::PartitionQueue) {
    q.in_flight = q.in_flight.saturating_sub(1);
    if q.in_flight == 0 {
        q.in_flight_broker = None;
    }
}

/// The error of a batch whose delivery timeout passed.
fn expired(b: &ProducerBatch, timeout: Duration) -> Error {
    let unknown = if b.attempts > 0 {
        "; it was sent before, so it may or may not have been written"
    } else {
        ""
    };
    Error::Timeout(format!(
        "{} record(s) for {}-{} expired: delivery_timeout ({timeout:?}) passed before they were acknowledged{unknown}",
        b.record_count(),
        b.topic,
        b.partition
    ))
}

/// Java's sequence arithmetic: sequences wrap from i32::MAX to 0.
pub(crate) fn increment_sequence(seq: i32, by: i32) -> i32 {
    if seq > i32::MAX - by { by - (i32::MAX - seq) - 1 } else { seq + by }
}

/// Asks any broker for a producer id and epoch (non-transactional idempotence).
pub(crate) async fn init_producer_id(core: &ClientCore, timeout: Duration) -> Result<ProducerIdentity> {
    core.with_retries("InitProducerId", timeout, || async {
        let conn = core.any_broker().await?;
        let req = InitProducerIdRequest::default().with_transactional_id(None)
            .with_transaction_timeout_ms(i32::MAX)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let resp = conn.send(&req).await?;
        Error::check_code(resp.error_code, "InitProducerId", None, None, None)?;
        Ok(ProducerIdentity { producer_id: resp.producer_id.0, epoch: resp.producer_epoch })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_the_java_client() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 10), 8);
    }

    /// `availability_timeout`: a broker counts as unavailable once its data waited longer
    /// than the timeout without it taking a request, and available again at its next drain.
    #[test]
    fn a_broker_that_cannot_take_requests_past_the_availability_timeout_is_unavailable() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let round = |one: bool| HashMap::from([(1, one), (2, true)]);
        let mut l = NodeLatencies::new(Duration::from_millis(500));
        l.note_round(round(true), at(0));
        for ms in [100, 300, 500] {
            l.note_round(round(false), at(ms)); // broker 1 at max_in_flight, unanswered
            assert!(!l.unavailable(1) && !l.unavailable(2), "waited only {ms} ms");
        }
        l.note_round(round(false), at(501));
        assert!(l.unavailable(1), "waited 501 ms > 500 ms");
        assert!(!l.unavailable(2) && !l.unavailable(3), "others (and unknown brokers) stay available");
        // Partitions led by broker 1 leave the load stats, so no switch picks them.
        let leaders = [(0, 1), (1, 2), (2, 1), (3, 2)];
        let queues: Vec<(i32, u32)> =
            leaders.iter().filter(|(_, b)| !l.unavailable(*b)).map(|(p, _)| (*p, 7 - *p as u32)).collect();
        let stats = LoadStats::from_queues(4, &queues).expect("partitions were left out");
        let picked: std::collections::BTreeSet<i32> = (0..stats.total()).map(|r| stats.partition_at(r)).collect();
        assert_eq!(picked, [1, 3].into(), "only broker 2's partitions");
        // It answers again: available at once.
        l.note_round(round(true), at(900));
        assert!(!l.unavailable(1));
        // No data ready for it: its times stand still (nothing is waiting).
        l.note_round(HashMap::from([(2, true)]), at(5_000));
        assert!(!l.unavailable(1));
    }

    #[test]
    fn a_zero_availability_timeout_never_excludes_a_broker() {
        let t0 = Instant::now();
        let mut l = NodeLatencies::new(Duration::ZERO);
        l.note_round(HashMap::from([(1, true)]), t0);
        l.note_round(HashMap::from([(1, false)]), t0 + Duration::from_secs(3600));
        assert!(!l.unavailable(1));
        assert!(l.nodes.is_empty(), "nothing kept while off");
    }
}
