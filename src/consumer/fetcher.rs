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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::config::OffsetReset;
use super::fetch_session::{self, FetchSession, PartitionData, SessionRequest, Verdict};
use super::subscription::{FetchPosition, ResetTo};
use super::completed_fetch::CompletedFetch;
use super::subscription::SubscriptionState;
use super::types::TopicPartition;
use super::ConsumerConfig;
use crate::client::ClientCore;
use crate::error::{Error, ErrorCode, Result};
use crate::network::ConnKind;

/// State shared by the consumer handle and its fetch tasks.
pub(crate) struct Shared {
    pub(crate) core: Arc<ClientCore>,
    pub(crate) cfg: ConsumerConfig,
    pub(crate) state: Mutex<SubscriptionState>,
    /// Bumped when fetch tasks may have new work (assign, seek, resume, data consumed,
    /// metadata refreshed).
    pub(crate) changed: watch::Sender<u64>,
    /// Bumped when `poll` may find something new (data or an error).
    pub(crate) data: watch::Sender<u64>,
    closed: AtomicBool,
    tasks: Mutex<HashMap<i32, JoinHandle<()>>>,
    /// Each broker task's fetch session (id, epoch of its next request); closed when the
    /// consumer closes.
    pub(super) sessions: Mutex<HashMap<i32, (i32, i32)>>,
}

impl Shared {
    pub(crate) fn new(core: Arc<ClientCore>, cfg: ConsumerConfig) -> Shared {
        Shared {
            core,
            cfg,
            state: Mutex::new(SubscriptionState::default()),
            changed: watch::channel(0).0,
            data: watch::channel(0).0,
            closed: AtomicBool::new(false),
            tasks: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn wake_fetchers(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn wake_poll(&self) {
        self.data.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Starts the fetch task of `broker` unless it runs.
    pub(crate) fn ensure_broker_task(self: &Arc<Self>, broker: i32) {
        if self.is_closed() {
            return;
        }
        let mut tasks = self.tasks.lock().unwrap();
        if tasks.get(&broker).is_some_and(|h| !h.is_finished()) {
            return;
        }
        tasks.insert(broker, tokio::spawn(run_broker(self.clone(), broker)));
    }

    /// Records broker `broker`'s fetch session.
    pub(crate) fn set_session(&self, broker: i32, session_id: i32, epoch: i32) {
        let mut s = self.sessions.lock().unwrap();
        if session_id == 0 {
            s.remove(&broker);
        } else {
            s.insert(broker, (session_id, epoch));
        }
    }

    pub(crate) fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for (_, h) in self.tasks.lock().unwrap().drain() {
            h.abort();
        }
        self.close_sessions();
        self.wake_fetchers();
        self.wake_poll();
    }

    /// Closes the brokers' fetch sessions (KIP-227 final epoch) in the background, on the
    /// fetch connections that are still open; nothing waits for the answers. A session left
    /// open would only hold a slot of the broker's session cache until evicted.
    fn close_sessions(&self) {
        let sessions: Vec<(i32, i32)> = self.sessions.lock().unwrap().drain().map(|(b, (id, _))| (b, id)).collect();
        if sessions.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let cluster = self.core.metadata.snapshot();
        let timeout = self.core.config.request_timeout;
        for (broker, session_id) in sessions {
            let Some(addr) = cluster.broker_addr(broker) else { continue };
            let Some(conn) = self.core.pool.existing(&addr, crate::network::ConnKind::Fetch) else { continue };
            let Ok(version) = conn.version_for::<kafka_protocol::messages::FetchRequest>() else { continue };
            if version < fetch_session::MIN_SESSION_VERSION {
                continue;
            }
            let req = close_session_request(session_id);
            rt.spawn(async move {
                let r = conn.send_at_with_timeout(&req, version, timeout).await;
                tracing::debug!(broker, session_id, ok = r.is_ok(), "fetch session closed");
            });
        }
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

