//! The Fetcher: one fetch task per broker, on that broker's `ConnKind::Fetch` connection, plus
//! a small manager task that keeps the metadata of the assigned topics fresh and starts the
//! broker tasks that leaders need.
//!
//! ```text
//!  manager task ── metadata refresh, one broker task per leader
//!  broker task N ── Fetch(partitions led by N that are fetchable) ──► broker N
//!        │  answer: per partition a CompletedFetch (the raw records bytes, not decoded)
//!        ▼
//!  SubscriptionState.buffer ──► Consumer::poll decodes lazily (CompletedFetch::take),
//!                                advancing the position record by record
//! ```
//!
//! Prefetch is bounded: a partition is fetched again only once its buffered fetch has been
//! consumed, and no broker task sends a fetch while `fetch_max_bytes` is buffered.
//!
//! Fetch sessions (KIP-227, Fetch v7+): each broker task keeps a [`FetchSession`]. The first
//! request is full and asks for a session; later ones list only the partitions that are new
//! or whose fetch position changed, and forget those no longer fetchable (paused, buffered,
//! in backoff, moved away). The broker leaves out of an incremental answer the partitions
//! with nothing new. See `fetch_session.rs` for the errors that reset the session. When the
//! consumer closes, each task's session is closed with a final-epoch request.
//!
//! Leader changes: NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH (and
//! the other "metadata is stale" codes) go through `ClientCore::on_error`, which invalidates
//! the metadata; the manager refreshes it and the partition is fetched by its new leader's
//! task from the same position, so nothing is lost or repeated.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::config::{IsolationLevel, OffsetReset};
use super::fetch_session::{self, FetchSession, PartitionData, SessionRequest, Verdict};
use super::subscription::{FetchPosition, ResetTo};
use super::{ConsumerRecord, Shared, TimestampType, TopicPartition};
use crate::error::{Error, ErrorCode, Result};
use crate::network::ConnKind;
use crate::record::{self, BatchIter, ControlRecordType, RecordBatchHeader, RecordIter};

/// The fetched records of one partition, decoded lazily by `poll`.
pub(crate) struct CompletedFetch {
    pub tp: TopicPartition,
    topic: Arc<str>,
    /// The partition's generation when the fetch was sent; a seek since then voids it.
    pub generation: u64,
    /// The records bytes held (counted against `fetch_max_bytes`).
    pub size: usize,
    batches: BatchIter,
    /// The next offset to return: the partition's position once this fetch is consumed.
    pub next_offset: i64,
    /// The leader epoch of the last batch passed.
    pub last_epoch: Option<i32>,
    read_committed: bool,
    /// Aborted transactions (producer id, first offset) not yet reached, by first offset.
    aborted: VecDeque<(i64, i64)>,
    aborted_producers: HashSet<i64>,
    /// The batch being handed out, decoded one record at a time.
    current: Option<(BatchInfo, RecordIter)>,
    max_decompressed: usize,
    /// An error found after records were already handed out; returned by the next `take`.
    error: Option<Error>,
    saw_batch: bool,
    exhausted: bool,
}

/// What a record needs from its batch header.
#[derive(Clone, Copy)]
struct BatchInfo {
    next_offset: i64,
    leader_epoch: Option<i32>,
    timestamp_type: TimestampType,
}

impl CompletedFetch {
    /// `records`: the partition's records bytes from the fetch response; `aborted`: its
    /// aborted-transaction list (producer id, first offset), any order.
    #[allow(clippy::too_many_arguments)] // one call site in production, one in the tests
    pub(crate) fn new(
        tp: TopicPartition,
        generation: u64,
        fetch_offset: i64,
        last_epoch: Option<i32>,
        records: Bytes,
        isolation: IsolationLevel,
        mut aborted: Vec<(i64, i64)>,
        max_decompressed: usize,
        check_crcs: bool,
    ) -> CompletedFetch {
        // Some brokers do not sort the list: order it by first offset (ties by producer id).
        aborted.sort_by_key(|&(pid, first)| (first, pid));
        CompletedFetch {
            topic: Arc::from(tp.topic.as_str()),
            tp,
            generation,
            size: records.len(),
            batches: if check_crcs {
                record::batches(records, max_decompressed)
            } else {
                record::batches(records, max_decompressed).without_crc_check()
            },
            next_offset: fetch_offset,
            last_epoch,
            read_committed: isolation == IsolationLevel::ReadCommitted,
            aborted: aborted.into(),
            aborted_producers: HashSet::new(),
            current: None,
            max_decompressed,
            error: None,
            saw_batch: false,
            exhausted: false,
        }
    }

    /// Whether every record has been handed out (or skipped).
    pub(crate) fn is_exhausted(&self) -> bool {
        self.exhausted && self.current.is_none() && self.error.is_none()
    }

    fn corrupt(&self, offset: i64, detail: String) -> Error {
        Error::CorruptRecord { topic: self.tp.topic.clone(), partition: self.tp.partition, offset, detail }
    }

    /// Appends up to `max` records to `out`, advancing `next_offset` past every record, control
    /// batch and aborted batch it passes. An error (bad CRC, malformed batch, decompression
    /// bomb) is returned only when no record was appended by this call; otherwise it waits
    /// for the next call. The position stays at the bad batch.
    pub(crate) fn take(&mut self, max: usize, out: &mut Vec<ConsumerRecord>) -> Result<()> {
        let start = out.len();
        if let Some(e) = self.error.clone() {
            return Err(e);
        }
        while out.len() - start < max {
            if let Some((info, records)) = &mut self.current {
                let info = *info;
                match records.next() {
                    Some(Err(e)) => {
                        // A malformed record: the records before it were good and handed
                        // out; the position stays at the bad one (as the Java client does).
                        let e = self.corrupt(self.next_offset, e.to_string());
                        return self.fail(e, out.len() > start);
                    }
                    Some(Ok(r)) => {
                        if r.offset < self.next_offset {
                            continue; // before the fetch position (a seek into the batch)
                        }
                        self.next_offset = r.offset.wrapping_add(1);
                        out.push(ConsumerRecord {
                            topic: self.topic.clone(),
                            partition: self.tp.partition,
                            offset: r.offset,
                            timestamp: r.timestamp,
                            timestamp_type: info.timestamp_type,
                            key: r.key,
                            value: r.value,
                            headers: r.headers,
                            leader_epoch: info.leader_epoch,
                        });
                        continue;
                    }
                    None => {
                        self.next_offset = self.next_offset.max(info.next_offset);
                        self.current = None;
                    }
                }
            }
            if self.exhausted {
                break;
            }
            let raw = match self.batches.next_raw() {
                None => {
                    self.exhausted = true;
                    if !self.saw_batch && self.batches.truncated() {
                        let e = self.corrupt(
                            self.next_offset,
                            "the fetch returned only part of a batch (larger than the fetch size allows)".into(),
                        );
                        return self.fail(e, out.len() > start);
                    }
                    break;
                }
                Some(Err(e)) => {
                    let e = self.corrupt(self.next_offset, e.to_string());
                    return self.fail(e, out.len() > start);
                }
                Some(Ok(raw)) => raw,
            };
            self.saw_batch = true;
            let h: &RecordBatchHeader = &raw.header;
            let batch_next = h.last_offset().wrapping_add(1);
            if batch_next <= self.next_offset {
                continue; // entirely before the position
            }
            let epoch = (h.partition_leader_epoch >= 0).then_some(h.partition_leader_epoch);
            let is_control = h.attributes & record::attr::CONTROL != 0;
            let transactional = h.attributes & record::attr::TRANSACTIONAL != 0;
            if self.read_committed && h.producer_id >= 0 {
                let last = h.last_offset();
                while let Some(&(pid, first)) = self.aborted.front() {
                    if first > last {
                        break;
                    }
                    self.aborted.pop_front();
                    self.aborted_producers.insert(pid);
                }
                if !is_control && transactional && self.aborted_producers.contains(&h.producer_id) {
                    // An aborted transaction's batch: skipped, never decoded.
                    self.next_offset = batch_next;
                    self.last_epoch = epoch.or(self.last_epoch);
                    continue;
                }
            }
            let (base_offset, producer_id) = (h.base_offset, h.producer_id);
            let info = BatchInfo {
                next_offset: batch_next,
                leader_epoch: epoch,
                timestamp_type: if h.log_append_time() { TimestampType::LogAppendTime } else { TimestampType::CreateTime },
            };
            let records = match raw.records(self.max_decompressed) {
                Ok(d) => d,
                Err(e) => {
                    self.exhausted = true;
                    let e = self.corrupt(base_offset, e.to_string());
                    return self.fail(e, out.len() > start);
                }
            };
            self.last_epoch = epoch.or(self.last_epoch);
            if is_control {
                // Never returned; an ABORT marker ends the producer's aborted transaction.
                if self.read_committed
                    && records.peek_control_type() == Some(ControlRecordType::Abort)
                {
                    self.aborted_producers.remove(&producer_id);
                }
                self.next_offset = self.next_offset.max(batch_next);
                continue;
            }
            self.current = Some((info, records));
        }
        Ok(())
    }

    fn fail(&mut self, e: Error, have_records: bool) -> Result<()> {
        self.exhausted = true;
        self.current = None;
        self.error = Some(e.clone());
        if have_records { Ok(()) } else { Err(e) }
    }
}

/// One partition of a planned fetch.
struct Planned {
    tp: TopicPartition,
    generation: u64,
    position: FetchPosition,
    leader_epoch: Option<i32>,
}

/// Keeps metadata of the assigned topics fresh and starts a fetch task per leader.
/// Ends when the consumer is closed.
pub(crate) async fn run_manager(shared: Arc<Shared>) {
    let mut changed = shared.changed.subscribe();
    let mut last_snapshot = None;
    loop {
        if shared.is_closed() {
            return;
        }
        let (topics, tps): (Vec<String>, Vec<TopicPartition>) = {
            let st = shared.state.lock().unwrap();
            let tps: Vec<TopicPartition> = st.partitions.keys().cloned().collect();
            let mut topics: Vec<String> = tps.iter().map(|tp| tp.topic.clone()).collect();
            topics.dedup();
            (topics, tps)
        };
        let mut wait = Duration::from_secs(1);
        if !topics.is_empty() {
            let snap = shared.core.metadata.snapshot();
            let unknown = topics.iter().any(|t| !snap.topics.contains_key(t));
            let cluster = if unknown {
                shared.core.metadata.refresh_topics(&topics).await
            } else {
                shared.core.cluster().await
            };
            match cluster {
                Ok(cluster) => {
                    let mut missing = false;
                    for tp in &tps {
                        match cluster.leader_for(&tp.topic, tp.partition) {
                            Some((leader, _)) => shared.ensure_broker_task(leader),
                            None => missing = true,
                        }
                    }
                    if missing {
                        shared.core.metadata.invalidate();
                        wait = shared.core.config.retry_backoff;
                    }
                    let same = last_snapshot.as_ref().is_some_and(|s| Arc::ptr_eq(s, &cluster));
                    if !same {
                        last_snapshot = Some(cluster);
                        shared.wake_fetchers();
                    }
                }
                Err(e) => {
                    debug!(error = %e, "consumer metadata refresh failed");
                    wait = shared.core.config.retry_backoff;
                }
            }
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The fetch loop of one broker. Ends when the consumer is closed.
pub(crate) async fn run_broker(shared: Arc<Shared>, broker: i32) {
    let mut changed = shared.changed.subscribe();
    let mut session = FetchSession::new(broker);
    loop {
        if shared.is_closed() {
            return;
        }
        changed.borrow_and_update();
        let (plan, wake_at, more_soon) = plan_fetch(&shared, broker);
        if plan.is_empty() {
            let sleep = wake_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = changed.changed() => {}
                _ = tokio::time::sleep_until(sleep) => {}
            }
            continue;
        }
        let max_wait = if more_soon { shared.cfg.fetch_max_wait.min(SHORT_FETCH_WAIT) } else { shared.cfg.fetch_max_wait };
        let result = fetch(&shared, broker, &mut session, &plan, max_wait).await;
        shared.set_session(broker, session.session_id(), session.epoch());
        let failed = handle_response(&shared, &plan, result);
        if failed {
            tokio::time::sleep(shared.core.config.retry_backoff).await;
        }
    }
}

/// The partitions led by `broker` that can be fetched now (marked in flight), and when to
/// look again if none can.
fn plan_fetch(shared: &Shared, broker: i32) -> (Vec<Planned>, Option<Instant>, bool) {
    let cluster = shared.core.metadata.snapshot();
    let now = Instant::now();
    let mut st = shared.state.lock().unwrap();
    if st.buffered_bytes >= shared.cfg.fetch_max_bytes as usize {
        return (Vec::new(), None, false);
    }
    let mut plan = Vec::new();
    let mut wake_at: Option<Instant> = None;
    // A partition of this broker whose buffered records the application is still reading,
    // with more records behind them at the broker: it becomes fetchable within moments, so
    // this fetch must not long-poll on the others (one fetch per broker is in flight).
    let mut more_soon = false;
    for (tp, p) in st.partitions.iter_mut() {
        let Some((leader, epoch)) = cluster.leader_for(&tp.topic, tp.partition) else { continue };
        if leader != broker {
            continue;
        }
        if let Some(t) = p.backoff_until {
            if t > now {
                wake_at = Some(wake_at.map_or(t, |w| w.min(t)));
                continue;
            }
            p.backoff_until = None;
        }
        if !p.fetchable(now) {
            if p.buffered && !p.paused {
                let position = p.position.map(|f| f.offset).unwrap_or(i64::MAX);
                more_soon |= p.high_watermark.is_some_and(|hw| hw > position);
            }
            continue;
        }
        p.in_flight = true;
        plan.push(Planned { tp: tp.clone(), generation: p.generation, position: p.position.expect("fetchable"), leader_epoch: epoch });
    }
    (plan, wake_at, more_soon)
}

/// The long-poll wait used while another partition of the broker is about to become
/// fetchable again (see `plan_fetch`).
const SHORT_FETCH_WAIT: Duration = Duration::from_millis(10);

/// A fetch answer, or why there is none to apply.
enum Fetched {
    Answer(FetchResponse),
    /// The fetch session was reset; fetch again (after the retry backoff if `backoff`).
    Discarded { backoff: bool },
}

async fn fetch(
    shared: &Shared,
    broker: i32,
    session: &mut FetchSession,
    plan: &[Planned],
    max_wait: Duration,
) -> Result<Fetched> {
    let cfg = &shared.cfg;
    let conn = shared.core.broker(broker, ConnKind::Fetch).await?;
    let version = conn.version_for::<FetchRequest>()?;
    let next: Vec<(TopicPartition, PartitionData)> = plan
        .iter()
        .map(|p| {
            let d = PartitionData {
                fetch_offset: p.position.offset,
                log_start_offset: -1,
                max_bytes: cfg.max_partition_fetch_bytes,
                current_leader_epoch: if version >= 9 { p.leader_epoch.unwrap_or(-1) } else { -1 },
                last_fetched_epoch: if version >= 12 { p.position.last_fetched_epoch.unwrap_or(-1) } else { -1 },
            };
            (p.tp.clone(), d)
        })
        .collect();
    let sreq = session.build(version, next, Instant::now());
    let req = fetch_request(cfg, &sreq, version).with_max_wait_ms(max_wait.as_millis() as i32);
    let timeout = shared.core.config.request_timeout + cfg.fetch_max_wait;
    tracing::trace!(broker, partitions = plan.len(), "fetch");
    let answer = conn.send_raw_with_timeout(&req, version, timeout).await.and_then(|frame| {
        super::fetch_decode::decode_fetch_response(frame, version).map_err(|detail| Error::Protocol {
            broker: format!("broker {broker}"),
            detail: format!("Fetch v{version} response: {detail}"),
        })
    });
    match answer {
        Ok(resp) => match session.handle_response(&resp, Instant::now()) {
            Verdict::Apply => Ok(Fetched::Answer(resp)),
            Verdict::Discard { backoff, reason } => {
                debug!(broker, %reason, "fetch answer discarded");
                Ok(Fetched::Discarded { backoff })
            }
        },
        Err(e) => {
            session.handle_error();
            Err(e)
        }
    }
}

/// The Fetch request of a session request.
fn fetch_request(cfg: &super::ConsumerConfig, sreq: &SessionRequest, version: i16) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, d) in &sreq.to_send {
        let part = FetchPartition::default()
            .with_partition(tp.partition)
            .with_fetch_offset(d.fetch_offset)
            .with_log_start_offset(d.log_start_offset)
            .with_partition_max_bytes(d.max_bytes)
            .with_current_leader_epoch(d.current_leader_epoch)
            .with_last_fetched_epoch(d.last_fetched_epoch);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == tp.topic) {
            Some(t) => t.partitions.push(part),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let mut req = FetchRequest::default()
        .with_max_wait_ms(cfg.fetch_max_wait.as_millis() as i32)
        .with_min_bytes(cfg.fetch_min_bytes)
        .with_max_bytes(cfg.fetch_max_bytes)
        .with_isolation_level(cfg.isolation_level.wire())
        .with_topics(topics);
    if version >= fetch_session::MIN_SESSION_VERSION {
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        for tp in &sreq.to_forget {
            match forgotten.iter_mut().find(|t| t.topic.0.as_str() == tp.topic) {
                Some(t) => t.partitions.push(tp.partition),
                None => forgotten.push(
                    ForgottenTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                        .with_partitions(vec![tp.partition]),
                ),
            }
        }
        req = req.with_session_id(sreq.session_id).with_session_epoch(sreq.epoch).with_forgotten_topics_data(forgotten);
    }
    req
}

/// A request closing fetch session `session_id` (sent when the consumer closes).
pub(crate) fn close_session_request(session_id: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_session_id(session_id)
        .with_session_epoch(fetch_session::FINAL_EPOCH)
}

/// Applies a fetch answer to the subscription state. Returns whether the whole request
/// failed (the caller backs off).
fn handle_response(shared: &Shared, plan: &[Planned], result: Result<Fetched>) -> bool {
    let now = Instant::now();
    let backoff = shared.core.config.retry_backoff;
    let mut st = shared.state.lock().unwrap();
    for p in plan {
        if let Some(s) = st.partitions.get_mut(&p.tp) {
            s.in_flight = false;
        }
    }
    let resp = match result.and_then(|f| {
        if let Fetched::Answer(r) = &f {
            Error::check_code(r.error_code, "Fetch", None, None, None)?;
        }
        Ok(f)
    }) {
        Ok(Fetched::Answer(r)) => r,
        Ok(Fetched::Discarded { backoff }) => return backoff,
        Err(e) => {
            debug!(error = %e, "fetch failed");
            drop(st);
            shared.core.on_error(&e);
            let unreadable = matches!(e, Error::Protocol { .. } | Error::FrameTooLarge { .. } | Error::WrongProtocol { .. });
            if (!e.is_retriable() && !e.is_connection_level()) || unreadable {
                // Not going to get better by itself (unsupported version, authorization), or
                // the broker's answer could not be read at all: hand it to the application
                // through the partitions it concerns (the fetch is retried once it is taken).
                let mut st = shared.state.lock().unwrap();
                for p in plan {
                    if let Some(s) = st.partitions.get_mut(&p.tp) {
                        if s.generation == p.generation {
                            s.error = Some(e.clone());
                        }
                    }
                }
                drop(st);
                shared.wake_poll();
            }
            shared.wake_fetchers();
            return true;
        }
    };
    let planned: HashMap<(&str, i32), &Planned> = plan.iter().map(|p| ((p.tp.topic.as_str(), p.tp.partition), p)).collect();
    let mut new_data = false;
    let mut wake = false;
    let mut stale_metadata = None;
    for topic in resp.responses {
        let name = topic.topic.0.to_string();
        for part in topic.partitions {
            let Some(p) = planned.get(&(name.as_str(), part.partition_index)) else { continue };
            let Some(s) = st.partitions.get_mut(&p.tp) else { continue };
            if s.generation != p.generation || s.position != Some(p.position) {
                continue; // a seek or reset since the fetch was sent
            }
            if part.high_watermark >= 0 {
                s.high_watermark = Some(part.high_watermark);
            }
            if part.last_stable_offset >= 0 {
                s.last_stable_offset = Some(part.last_stable_offset);
            }
            if part.log_start_offset >= 0 {
                s.log_start_offset = Some(part.log_start_offset);
            }
            match ErrorCode::from_code(part.error_code) {
                None => {}
                Some(ErrorCode::OffsetOutOfRange) => {
                    match shared.cfg.auto_offset_reset {
                        OffsetReset::Error => {
                            s.error = Some(Error::broker(
                                ErrorCode::OffsetOutOfRange,
                                "Fetch",
                                Some(format!(
                                    "fetch offset {} is out of range (log start {:?}, high watermark {:?}) and auto_offset_reset is Error; seek to continue",
                                    p.position.offset, s.log_start_offset, s.high_watermark
                                )),
                                Some(p.tp.topic.clone()),
                                Some(p.tp.partition),
                            ));
                            new_data = true;
                        }
                        reset => {
                            let to = if reset == OffsetReset::Earliest { ResetTo::Earliest } else { ResetTo::Latest };
                            debug!(topic = %p.tp.topic, partition = p.tp.partition, offset = p.position.offset, ?to, "offset out of range, resetting");
                            s.position = None;
                            s.reset = Some(to);
                            new_data = true; // poll resolves the reset
                        }
                    }
                    continue;
                }
                Some(code) => {
                    let err = Error::broker(code, "Fetch", None, Some(p.tp.topic.clone()), Some(p.tp.partition));
                    if matches!(
                        code,
                        ErrorCode::NotLeaderOrFollower
                            | ErrorCode::FencedLeaderEpoch
                            | ErrorCode::UnknownLeaderEpoch
                            | ErrorCode::UnknownTopicOrPartition
                            | ErrorCode::LeaderNotAvailable
                            | ErrorCode::KafkaStorageError
                            | ErrorCode::ReplicaNotAvailable
                            | ErrorCode::OffsetNotAvailable
                            | ErrorCode::NotEnoughReplicas
                    ) || err.is_retriable()
                    {
                        // The leader moved or is not ready: refresh metadata, fetch again
                        // from the same position (at the new leader if it moved).
                        debug!(topic = %p.tp.topic, partition = p.tp.partition, error = %err, "fetch partition error; refreshing metadata");
                        s.backoff_until = Some(now + backoff);
                        stale_metadata = Some(err);
                    } else {
                        s.error = Some(err);
                        new_data = true;
                    }
                    continue;
                }
            }
            let d = &part.diverging_epoch;
            if d.epoch >= 0 && d.end_offset >= 0 {
                let last = p.position.last_fetched_epoch.unwrap_or(-1);
                if d.end_offset < p.position.offset {
                    if shared.cfg.auto_offset_reset == OffsetReset::Error {
                        s.error = Some(Error::LogTruncation {
                            topic: p.tp.topic.clone(),
                            partition: p.tp.partition,
                            position: p.position.offset,
                            last_fetched_epoch: last,
                            divergent_offset: d.end_offset,
                            divergent_epoch: d.epoch,
                        });
                        new_data = true;
                    } else {
                        warn!(
                            topic = %p.tp.topic, partition = p.tp.partition, position = p.position.offset,
                            divergent_offset = d.end_offset, epoch = d.epoch,
                            "log truncation detected; continuing from the first divergent offset"
                        );
                        s.position = Some(FetchPosition { offset: d.end_offset, last_fetched_epoch: Some(d.epoch) });
                        wake = true;
                    }
                } else {
                    // Our epoch ends at or after the position: no data lost; fetch on
                    // without the epoch check.
                    s.position = Some(FetchPosition { offset: p.position.offset, last_fetched_epoch: None });
                    wake = true;
                }
                continue;
            }
            let records = part.records.unwrap_or_default();
            if records.is_empty() {
                continue;
            }
            let aborted: Vec<(i64, i64)> = part
                .aborted_transactions
                .unwrap_or_default()
                .iter()
                .map(|a| (a.producer_id.0, a.first_offset))
                .collect();
            let f = CompletedFetch::new(
                p.tp.clone(),
                p.generation,
                p.position.offset,
                p.position.last_fetched_epoch,
                records,
                shared.cfg.isolation_level,
                aborted,
                shared.cfg.max_decompressed_batch_bytes,
                shared.cfg.check_crcs,
            );
            s.buffered = true;
            st.buffered_bytes += f.size;
            st.buffer.push_back(f);
            new_data = true;
        }
    }
    drop(st);
    if let Some(e) = stale_metadata {
        shared.core.on_error(&e);
        wake = true;
    }
    if new_data {
        shared.wake_poll();
    }
    if wake {
        shared.wake_fetchers();
    }
    false
}

#[cfg(test)]
mod tests;
